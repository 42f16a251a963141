"""Validates Missive's OpenAPI document and live responses with jsonschema (Debian's
python3-jsonschema, Draft 2020-12, which OpenAPI 3.1 schemas are).

stdin: {"doc": <the OpenAPI document>, "meta": <the OpenAPI 3.1 schema>, "responses": [
  {"method", "path" (the document's path template), "status", "contentType", "body" (text)}]}
stdout: {"document": [problems], "responses": [problems]}
"""
import json
import sys

from jsonschema import Draft202012Validator

data = json.load(sys.stdin)
doc, meta = data["doc"], data["meta"]
out = {"document": [], "responses": []}

for e in Draft202012Validator(meta).iter_errors(doc):
    out["document"].append(f"{'/'.join(map(str, e.absolute_path))}: {e.message}")

# Every schema of the document must itself be a valid 2020-12 schema.
for name, schema in doc.get("components", {}).get("schemas", {}).items():
    for e in Draft202012Validator(Draft202012Validator.META_SCHEMA).iter_errors(schema):
        out["document"].append(f"components/schemas/{name}: {e.message}")


def resolve(node):
    """A response object, following a $ref into the document."""
    while isinstance(node, dict) and "$ref" in node and len(node) == 1 and node["$ref"].startswith("#/components/responses/"):
        node = doc["components"]["responses"][node["$ref"].split("/")[-1]]
    return node


for r in data["responses"]:
    where = f"{r['method']} {r['path']} -> {r['status']}"
    op = doc["paths"].get(r["path"], {}).get(r["method"].lower())
    if op is None:
        out["responses"].append(f"{where}: no such operation in the document")
        continue
    resp = op["responses"].get(str(r["status"])) or op["responses"].get("default")
    if resp is None:
        out["responses"].append(f"{where}: status not documented")
        continue
    resp = resolve(resp)
    content = resp.get("content")
    if not content:
        if r["body"] not in ("", None) and r["method"] != "HEAD":
            out["responses"].append(f"{where}: documented without a body, answered {r['body'][:80]!r}")
        continue
    media = (r["contentType"] or "").split(";")[0].strip()
    entry = content.get(media)
    if entry is None:
        out["responses"].append(f"{where}: content type {media!r} not documented ({list(content)})")
        continue
    if media.startswith("text/"):
        continue
    try:
        body = json.loads(r["body"])
    except ValueError as err:
        out["responses"].append(f"{where}: not JSON: {err}")
        continue
    # The response schema with the document's components beside it, so its $refs resolve.
    schema = dict(entry["schema"])
    schema["components"] = doc["components"]
    for e in Draft202012Validator(schema).iter_errors(body):
        out["responses"].append(f"{where}: {'/'.join(map(str, e.absolute_path))}: {e.message}")

json.dump(out, sys.stdout)
