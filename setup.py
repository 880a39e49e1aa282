"""Build configuration beside pyproject.toml (which holds the metadata): the optional native extension.

ledger._smt_native is the native fast path of the sparse Merkle tree update (ledger/smt.py keeps the pure-Python
reference and uses it whenever the extension is absent). It needs a C compiler, the Python headers and OpenSSL's
headers (Debian: gcc python3-dev libssl-dev); without them `pip install` still succeeds (optional=True), pure Python.

ledger._codec_native is the native fast path of ledger.codec: `decode` (strict canonical msgpack against a wire type),
`constructor` (records built by writing their slots) and `encode_trusted` (the ledger's own values); it needs only a
C compiler and the Python headers, and ledger/codec.py does all three in Python whenever it is absent.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "ledger._smt_native",
            ["ledger/_smt_native.c"],
            libraries=["crypto"],
            extra_compile_args=["-O2"],
            optional=True,
        ),
        Extension(
            "ledger._codec_native",
            ["ledger/_codec_native.c"],
            extra_compile_args=["-O2"],
            optional=True,
        ),
    ]
)
