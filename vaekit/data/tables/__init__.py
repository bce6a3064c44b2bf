"""Tables: reading CSV / Parquet / DataFrames with inferred, overridable column types (reader), and the codes a
generative model reads and writes, with their batches (encoding)."""
