"""smartsync: a fresh-when-it-matters, audited DuckDB mirror of QuickBooks Online, run by Dagster."""

from smartsync_pipeline.process_memory import keep_blas_threads_out, keep_thread_memory_flat

keep_thread_memory_flat()  # before any thread or Arrow allocation (see process_memory.py)
keep_blas_threads_out()  # before numpy's import

__version__ = "0.1.0"
