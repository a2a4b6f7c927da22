# Solutions of the case study's exercises: `ctr-lab run` (and `make run`) runs each notebook with
# these cells in place of its exercise cells (ctr_lab/tools/solutions.py). Each section is a whole
# cell, after a line `# %% ID`, and ends with the exercise cell's own check line.
# Students: try each exercise before reading its solution here.

# %% 01-click-rate
from pyspark.sql import functions as F

by_category = df.groupBy("site_category").agg(F.avg("label").alias("ctr"))
cl.exercises.check("01-click-rate", by_category, df)

# %% 02-publisher
from pyspark.sql import functions as F

is_app = F.col("site_id") == "85f751fd"
with_pub = df.withColumn("pub_id", F.when(is_app, F.col("app_id")).otherwise(F.col("site_id")))
cl.exercises.check("02-publisher", with_pub, df)

# %% 03-log-loss
import math

rows = [(1, 0.31), (0, 0.12), (0, 0.45), (1, 0.08), (0, 0.2)]
my_log_loss = sum(-math.log(p) if y == 1 else -math.log(1 - p) for y, p in rows) / len(rows)
cl.exercises.check("03-log-loss", my_log_loss, rows)

# %% 04-count-feature
from pyspark.sql import functions as F

train_df, test_df = cl.train.time_split(df)
ip_counts = train_df.groupBy("device_ip").agg(F.count("*").alias("device_ip_count"))
test_counts = test_df.join(ip_counts, "device_ip", "left").fillna(0, ["device_ip_count"])
cl.exercises.check("04-count-feature", test_counts, df)

# %% 05-threshold
table = cl.evaluate.business_table(pred, cost_per_ad=25.0)
within = table[table["spend_per_conversion"] <= 75]
chosen_threshold = float(within.sort_values("conversions").iloc[-1]["threshold"])
cl.exercises.check("05-threshold", chosen_threshold, pred)

# %% assignment-feature
# The hour as a category (the course's model reads it as a number), and the ad's size.
MY_FEATURES = {"hour_level": "hour_of_day", "ad_size": "concat_ws('x', C15, C16)"}
cl.exercises.check("assignment-feature", MY_FEATURES, df)
