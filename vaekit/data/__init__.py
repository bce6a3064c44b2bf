"""Data: IDX files, named sets (digits, mnist, fashion-mnist), image folders, arrays, tables (data.tables,
imported on use: it needs pandas); deterministic splits."""
from .dataset import NAMED, Dataset, Split, load_data, to_model_layout
from .files import check_array, load_array_file, load_image_folder
from .idx import parse_idx, read_idx
from .named import IDX_SETS, data_dirs, load_idx_set, user_cache
from .rows import DiskRows

__all__ = ["NAMED", "Dataset", "Split", "load_data", "to_model_layout", "check_array", "load_array_file",
           "load_image_folder", "parse_idx", "read_idx", "IDX_SETS", "data_dirs", "load_idx_set", "user_cache", "DiskRows"]
