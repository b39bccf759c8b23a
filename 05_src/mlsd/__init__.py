"""Design of Machine Learning Systems: the course package.

Modules, one per concern (see ``05_src/mlsd/README.md``):
``config`` settings, ``db`` PostgreSQL, ``logging`` course logs, ``notebooks``
notebook execution, ``cli`` the ``mlsd`` command. Importing the package does no work.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
