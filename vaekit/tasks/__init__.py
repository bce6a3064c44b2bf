"""What people do with a trained model, one sub-package per task, each built on the shared core (models, train,
runs): anomaly detection (anomaly), synthetic tables (synthesis), sentences (text) and compression into real
bitstreams (compression)."""
