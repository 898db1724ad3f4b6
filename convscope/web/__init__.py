"""``convscope serve``: a live explorer of a CNN in the browser.

The page draws, the server traces: every number and picture the page shows comes from the
library (:mod:`convscope.trace`, :mod:`convscope.arithmetic`, :mod:`convscope.viz`,
:mod:`convscope.runs`); the request handlers only decode requests and encode answers.

* :mod:`.catalog` — which models can be explored (run folders, the zoo, the one given), loaded once;
* :mod:`.inputs` — a request's input (a drawing, an upload, a validation image) prepared as
  ``convscope predict`` prepares an image;
* :mod:`.views` — JSON-ready answers: the network, one live update, a cell's arithmetic, pictures;
* :mod:`.jobs` — one training run at a time, in a thread, watched from the page;
* :mod:`.app` — the Starlette routes and their errors.
"""

from .app import create_app
from .errors import WebError

__all__ = ["WebError", "create_app"]
