"""Synthetic tables: the TabularVAE synthesizer (synthesizer), its scores (evaluate: sdmetrics and scikit-learn)
and the report that shows them (report)."""
