"""retrain: a MapReduce-style batch retraining engine on Apache Spark."""
__version__ = "0.1.0"
