"""Which parts of a Markdown cell JupyterLab typesets as LaTeX: its rule, ported for the tests.

JupyterLab 4 renders a Markdown cell in two passes over dollar signs
(``renderMarkdown`` in ``packages/rendermime/src/renderers.ts``):

1. ``removeMath`` (``packages/rendermime/src/latex.ts``) hides math from the Markdown parser.
   Dollar signs in code spans and fenced blocks are not delimiters; the text is split on
   ``MATHSPLIT`` (``$`` or ``$$``, ``\\begin{..}``/``\\end{..}``, an escaped ``\\$``, ``\\{`` or
   ``\\}``, braces, line breaks, ``\\\\(`` and the like); a ``$`` or ``$$`` opens math and the
   next equal delimiter with balanced braces closes it, within one paragraph.
2. The rest goes through the Markdown parser, which turns a backslash escape such as ``\\$``
   into the bare character, and the hidden math is put back. MathJax then typesets the whole
   rendered cell (``MathJaxTypesetter.typeset`` in ``packages/mathjax-extension/src/index.ts``:
   ``inlineMath`` ``$...$``, ``displayMath`` ``$$...$$``, ``processEscapes``): it pairs the
   dollar signs it finds in each run of text, skipping code and ``\\$``.

So two prices in one paragraph become one formula, whether written ``$3.20 ... $0.05`` or
``\\$3.20 ... \\$0.05`` (the parser unescapes the second form before MathJax sees it); only
``\\\\$`` (which the parser turns into the ``\\$`` MathJax reads as a dollar) or no dollar sign
keeps them text. These four forms, and a formula, were checked in JupyterLab 4 in Chromium.

Where the model is simpler than the real thing, it finds more math, not less: MathJax also
splits its runs of text at emphasis and links, which this model does not.
"""

from __future__ import annotations

import re
from typing import List, Optional, Tuple

#: latex.ts's MATHSPLIT, as a Python pattern (one capturing group, as there).
MATHSPLIT = re.compile(
    r"(\$\$?|\\(?:begin|end)\{[a-z]*\*?\}|\\[{}$]|[{}]|(?:\n\s*)+|@@\d+@@|\\\\(?:\(|\)|\[|\]))",
    re.IGNORECASE,
)
_FENCE = re.compile(r"^(?P<fence>`{3,}|(?:~T){3,})[^`\n]*\n([\s\S]*?)^(?P=fence)`*$", re.M)
_CODE_SPAN = re.compile(r"(^|[^\\])(`+)([^\n]*?[^`\n])\2(?!`)", re.M)
#: What ends a run of text for MathJax: a blank line (a new paragraph), a fenced block or a
#: code span (code is not scanned) or an HTML tag.
_RUN_BREAK = re.compile(r"\n\s*\n|^```[\s\S]*?^```|(?<!\\)(`+)[^`]+?\1|<[^>\n]+>", re.M)
#: CommonMark's backslash escapes: a backslash before ASCII punctuation.
_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
#: MathJax's delimiters with processEscapes: ``\\`` and ``\$`` are escapes, then ``$$``, ``$``.
_MATHJAX_TOKEN = re.compile(r"\\[\\$]|\$\$|\$")


def _hide_code_dollars(text: str) -> str:
    if "`" not in text and "~~~" not in text:
        return text
    text = text.replace("~", "~T")
    text = _FENCE.sub(lambda m: m.group(0).replace("$", "~D"), text)
    return _CODE_SPAN.sub(lambda m: m.group(0).replace("$", "~D"), text)


def remove_math(text: str) -> Tuple[str, List[str]]:
    """latex.ts's ``removeMath``: the text with each math piece replaced by ``@@n@@``, and the
    pieces."""
    blocks = MATHSPLIT.split(_hide_code_dollars(text.replace("\r\n", "\n").replace("\r", "\n")))
    math: List[str] = []
    start: Optional[int] = None
    end: Optional[str] = None
    last: Optional[int] = None
    braces = 0

    def process(i: int, j: int) -> None:
        math.append("".join(blocks[i : j + 1]))
        for k in range(i + 1, j + 1):
            blocks[k] = ""
        blocks[i] = f"@@{len(math) - 1}@@"

    i = 1
    while i < len(blocks):
        block = blocks[i]
        if block.startswith("@"):
            math.append(block)
            blocks[i] = f"@@{len(math) - 1}@@"
        elif start is not None:
            if block == end:
                if braces:
                    last = i
                else:
                    process(start, i)
                    start = end = last = None
            elif re.search(r"\n.*\n", block):
                if last is not None:
                    i = last
                    process(start, i)
                start = end = last = None
                braces = 0
            elif block == "{":
                braces += 1
            elif block == "}" and braces:
                braces -= 1
        elif block in ("$", "$$"):
            start, end, braces = i, block, 0
        elif block in ("\\\\(", "\\\\["):
            start, end, braces = i, "\\\\)" if block.endswith("(") else "\\\\]", 0
        elif block[1:6] == "begin":
            start, end, braces = i, "\\end" + block[6:], 0
        i += 2
    if start is not None and last is not None:
        process(start, last)

    def detilde(s: str) -> str:
        return re.sub(r"~([TD])", lambda m: "~" if m.group(1) == "T" else "$", s)

    if "`" in text or "~~~" in text:
        return detilde("".join(blocks)), [detilde(m) for m in math]
    return "".join(blocks), math


def math_spans(text: str) -> List[str]:
    """The pieces of ``text`` (one Markdown cell) that JupyterLab typesets, delimiters
    included, in order.

    Examples
    --------
    >>> math_spans("The loss is $-\\\\log p_i$ per row.")
    ['$-\\\\log p_i$']
    >>> math_spans("It costs $3.20 an hour, or $0.05 a model.")
    ['$3.20 an hour, or $']
    >>> math_spans("It costs \\\\$3.20 an hour, or \\\\$0.05 a model.")
    ['$3.20 an hour, or $']
    >>> math_spans("It costs \\\\\\\\$3.20 an hour, or USD 0.05 a model, or `$1 and $2` in code.")
    []
    """
    hidden, math = remove_math(text)
    spans: List[str] = []
    at = 0
    for piece in [*_RUN_BREAK.finditer(hidden), None]:
        run = hidden[at : piece.start() if piece else len(hidden)]
        at = piece.end() if piece else len(hidden)
        # The Markdown parser unescapes the text around the math; the math goes back as it was.
        shown = re.sub(r"@@(\d+)@@", lambda m: math[int(m.group(1))], _ESCAPE.sub(r"\1", run))
        opened: Optional[Tuple[int, str]] = None
        for token in _MATHJAX_TOKEN.finditer(shown):
            delimiter = token.group(0)
            if delimiter.startswith("\\"):
                continue
            if opened is None:
                opened = (token.start(), delimiter)
            elif delimiter == opened[1]:
                spans.append(shown[opened[0] : token.end()])
                opened = None
    return spans
