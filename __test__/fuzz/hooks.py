"""Schemathesis hooks for Candela's contract fuzz (__test__/openapi-fuzz.test.ts).

Two narrow allowances, each for something an OpenAPI document cannot say; the
run's summary counts every failure they drop.
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


@schemathesis.hook
def filter_failure(context, failure, case, response):
    if failure.code != "ST202" or response.status_code != 422:
        return True
    try:
        code = response.json()["error"]["code"]
    except Exception:
        return True
    return code not in MODEL_REFUSALS


@schemathesis.hook
def filter_case(context, case):
    # Uploads to POST /v1/documents are multipart files whose names must end
    # in .txt or .md (a rule OpenAPI cannot state), and schemathesis names the
    # parts itself; documents.test.ts covers uploads. JSON bodies are fuzzed.
    return case.media_type != "multipart/form-data"
