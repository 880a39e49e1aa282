"""Build configuration beside pyproject.toml (which holds the metadata): the optional native extension.

ledger._smt_native is the native fast path of the sparse Merkle tree update (ledger/smt.py keeps the pure-Python
reference and uses it whenever the extension is absent). It needs a C compiler, the Python headers and OpenSSL's
headers (Debian: gcc python3-dev libssl-dev); without them `pip install` still succeeds (optional=True), pure Python.
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
        )
    ]
)
