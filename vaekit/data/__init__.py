"""Data, one sub-package per modality, each handing the trainer its batches (data.batches' protocol):
images (data.images: IDX files, named sets such as mnist, image folders, arrays, deterministic splits) and
tables (data.tables: reading and type inference, and the encoding a generative model reads; imported on use,
it needs pandas)."""
from .images.dataset import NAMED, Dataset, Split, load_data, to_model_layout
from .images.files import check_array, load_array_file, load_image_folder
from .images.idx import parse_idx, read_idx
from .images.named import IDX_SETS, data_dirs, load_idx_set, user_cache
from .images.rows import DiskRows

__all__ = ["NAMED", "Dataset", "Split", "load_data", "to_model_layout", "check_array", "load_array_file",
           "load_image_folder", "parse_idx", "read_idx", "IDX_SETS", "data_dirs", "load_idx_set", "user_cache", "DiskRows"]
