"""Speech Detection Lab core: everything that computes, with no Streamlit import.

Every public function is usable from the CLI (`python -m core ...`), from tests and
from the dashboard pages, which only call into this package.
"""

__version__ = "0.1.0"
