"""Write the bad-input corpus: small files, each damaged in one way real files are.

    python tests/corpus/make_corpus.py      # rewrites the files next to this script

tests/test_corpus.py says what the loader must do with each.
"""

from __future__ import annotations

import gzip
from pathlib import Path

HERE = Path(__file__).resolve().parent

RAW_HEADER = (
    "id,click,hour,C1,banner_pos,site_id,site_domain,site_category,app_id,app_domain,app_category,"
    "device_id,device_ip,device_model,device_type,device_conn_type,C14,C15,C16,C17,C18,C19,C20,C21"
)
COURSE_HEADER = (
    "click,C1,banner_pos,site_id,site_domain,site_category,app_id,app_domain,app_category,"
    "device_id,device_ip,device_model,device_type,device_conn_type,C14,C15,C16,C17,C18,C19,C20,C21,"
    "month,dayofweek,day,hour"
)


def raw_row(i: int, click: str = "0", c14: str = "15706", hour: str = "14102100") -> str:
    return (
        f"{1000 + i},{click},{hour},1005,0,1fbe01fe,f3845767,28905ebd,ecad2386,7801e8d9,07d7df22,"
        f"a99f214a,ddd2926e,44956a24,1,2,{c14},320,50,1722,0,35,-1,79"
    )


def course_row(click: str = "FALSE", device_ip: str = "ddd2926e", model: str = "44956a24") -> str:
    return (
        f"{click},1005,0,1fbe01fe,f3845767,28905ebd,ecad2386,7801e8d9,07d7df22,a99f214a,"
        f"{device_ip},{model},1,2,15706,320,50,1722,0,35,-1,79,10,1,21,7"
    )


def lines(*rows: str, newline: str = "\n") -> bytes:
    return (newline.join(rows) + newline).encode()


def main() -> None:
    good = [raw_row(i, click=str(i % 2)) for i in range(8)]
    files = {
        "truncated_rows.csv": lines(RAW_HEADER, *good, raw_row(90)[:40], raw_row(91)[:-3]),
        "extra_fields.csv": lines(RAW_HEADER, *good, raw_row(92) + ",surplus"),
        "extra_column.csv": lines(RAW_HEADER + ",note", *(r + ",x" for r in good)),
        "missing_column.csv": lines(
            RAW_HEADER.replace(",C14", ""), *(r.replace(",15706", "") for r in good)
        ),
        "non_numeric_codes.csv": lines(RAW_HEADER, *good, raw_row(93, c14="15x06")),
        "bad_labels.csv": lines(RAW_HEADER, *good, raw_row(94, click="yes")),
        "empty.csv": b"",
        "header_only.csv": lines(RAW_HEADER),
        "binary_garbage.csv": bytes(range(256)) * 16,
        "duplicate_header_midfile.csv": lines(RAW_HEADER, *good[:4], RAW_HEADER, *good[4:]),
        "crlf.csv": lines(RAW_HEADER, *good, newline="\r\n"),
        "utf8_bom.csv": b"\xef\xbb\xbf" + lines(RAW_HEADER, *good),
        "spreadsheet_ids.csv": lines(
            COURSE_HEADER.replace("app_category", "add_category"),
            course_row("TRUE"),
            course_row(model="5490809"),
            course_row(device_ip="2.53E+79"),
            course_row(device_ip="03-Dec-12"),
        ),
        "bad_hour.csv": lines(RAW_HEADER, *good, raw_row(95, hour="2014-10-21")),
    }
    whole = gzip.compress(lines(RAW_HEADER, *(raw_row(i) for i in range(3000))), mtime=0)
    files["corrupt.csv.gz"] = whole[: len(whole) // 2]
    for name, data in files.items():
        (HERE / name).write_bytes(data)

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"user": ["a", "b"], "score": [0.5, 0.25]})
    pq.write_table(table, HERE / "wrong_schema.parquet")


if __name__ == "__main__":
    main()
