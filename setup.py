"""The filters' compiled inner loops (Cython; gcc and Python's headers build them).

Everything else about the package is in pyproject.toml; extension modules
are declared here because setuptools still calls its pyproject.toml table
for them experimental.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("filters.tokenscan", ["filters/tokenscan.pyx"]),
        Extension("filters.bodynorm", ["filters/bodynorm.pyx"]),
    ]
)
