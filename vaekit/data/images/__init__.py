"""Images and other arrays of examples: IDX files (idx), the named sets and their download cache (named), image
folders and array files (files), rows read from disk batch by batch (rows), and the splits of a data set
(dataset). Their batches are data.batches.ImageBatches."""
