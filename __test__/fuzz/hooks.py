"""Schemathesis hooks for Candela's contract fuzz (__test__/openapi-fuzz.test.ts).

Narrow allowances, each for something an OpenAPI document cannot say; the
run's summary counts every failure they drop ("Filtered").
"""

import schemathesis

# A schema-valid request the loaded model cannot serve: the prompt plus
# max_tokens exceed its context window, an input is longer than the embedder
# takes (truncate off) or a token id is outside the vocabulary, the model named
# has another role, or `dimensions` differs from the embedder's. These depend
# on the model, not the request's shape, so the document lists them under 422
# and this is the only 422 a valid body may get: a 422 from the validator
# (code invalid_request) still fails the run.
MODEL_REFUSALS = {"context_overflow", "invalid_input", "wrong_model_role", "invalid_dimensions"}


# The fuzzer also calls the admin routes that unload and load models (it
# learns the model ids from GET /v1/models), so for a moment a model is
# loading: requests for it get 503 model_not_ready with Retry-After, and
# readiness answers 503 with its report. Both are the documented answer to a
# temporary state, not a server fault; any other 5xx still fails the run.
def _temporarily_unavailable(case, response):
    if response.status_code != 503:
        return False
    try:
        body = response.json()
    except Exception:
        return False
    if case.operation.path == "/health/ready":
        return body.get("status") == "not_ready"
    return body.get("error", {}).get("code") == "model_not_ready" and "retry-after" in {k.lower() for k in response.headers}


def _error_code(response):
    try:
        return response.json()["error"]["code"]
    except Exception:
        return None


@schemathesis.hook
def filter_failure(context, failure, case, response):
    if failure.code in ("ST101", "ST202") and _temporarily_unavailable(case, response):
        return False
    if failure.code == "ST202" and response.status_code == 422 and _error_code(response) in MODEL_REFUSALS:
        return False
    return True


@schemathesis.hook
def filter_case(context, case):
    # Uploads to POST /v1/documents are multipart files whose names must end
    # in .txt or .md (a rule OpenAPI cannot state), and schemathesis names the
    # parts itself; documents.test.ts covers uploads. JSON bodies are fuzzed.
    return case.media_type != "multipart/form-data"
