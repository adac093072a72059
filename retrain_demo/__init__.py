"""The demo's plugin: the Python code a Task ML engineer would keep in their own package.

conf/project.yaml names it (`plugins: [retrain_demo]`); importing it registers what the
demo's features.yaml and models use. A team's plugin looks the same: a package that calls
`engine.transforms.feature_transform` and `engine.training.estimators.register_estimator`
when imported (README: "Plugins").
"""
from retrain_demo import transforms  # noqa: F401  (registers distance_band)
