from django.contrib.staticfiles.storage import ManifestStaticFilesStorage


class StaticFilesStorage(ManifestStaticFilesStorage):
    """Content-hashed names, also inside ES module imports.

    A page's ES modules import each other (``import ... from "./backoff.js"``); rewriting
    those to the hashed names means a browser never mixes a new module with a stale cached
    one (nginx lets browsers cache /static/ for ever).
    """

    support_js_module_import_aggregation = True
