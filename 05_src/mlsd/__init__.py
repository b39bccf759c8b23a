"""Design of Machine Learning Systems: the course package.

One module per concern, each documented in its own docstring: ``config`` settings, ``db``
PostgreSQL, ``data`` the generated dataset, ``pipelines`` bronze, silver and gold, ``sampling``,
``labeling``, ``features``, ``evaluation``, ``tracking`` MLflow, ``training``, ``explain``,
``monitoring``, ``serving``, ``experiments`` (tests in production, the feedback loop), ``fairness``,
``model_card``, ``privacy``, ``course`` and ``notebooks`` for the session notebooks, ``grading``,
``doctor``, ``logging``; ``cli`` is the ``mlsd`` command over them. Importing the package does no
work.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
