"""Drives Missive's WebSocket API with python-zaqarclient's websocket transport (Debian
python3-zaqarclient + python3-websocket), the low-level way its docstring shows
(zaqarclient/transport/ws.py): one `request.Request` per action, the body as JSON content.

Usage: zaqarclient_ws.py <ws-url> <project>
Covers authenticate, queues, post, list, get, bulk get, claim, claim get/update/delete, delete
with claim, stats, pop, purge, a subscription with its pushed message, and the client's error
mapping. Prints one line per step; exits non-zero on the first failed check.
"""
import json
import sys

from zaqarclient.transport import errors
from zaqarclient.transport import request
from zaqarclient.transport import ws

URL, PROJECT = sys.argv[1], sys.argv[2]


def check(cond, what):
    if not cond:
        print("FAIL: " + what)
        sys.exit(1)
    print("ok: " + what)


conf = {"auth_opts": {"backend": "noauth", "options": {"os_project_id": PROJECT, "os_auth_token": "none"}}}
trans = ws.WebsocketTransport(conf)


def send(action, body=None):
    req = request.Request(URL, action, content=None if body is None else json.dumps(body))
    resp = trans.send(req)
    return resp.status_code, json.loads(resp.content) if resp.content else None


try:
    status, body = send("queue_create", {"queue_name": "wsq", "metadata": {"colour": "blue"}})
    check(status == 201 and body == "Queue wsq created.", "queue_create (after authenticate)")
    status, body = send("queue_list", {"detailed": True})
    check(status == 200 and [q["name"] for q in body["queues"]] == ["wsq"], "queue_list")
    status, body = send("queue_get", {"queue_name": "wsq"})
    check(status == 200 and body["colour"] == "blue", "queue_get")

    status, body = send("message_post", {"queue_name": "wsq", "messages": [{"body": {"n": i}, "ttl": 300} for i in range(4)]})
    ids = body["message_ids"]
    check(status == 201 and len(ids) == 4, "message_post")
    status, body = send("message_list", {"queue_name": "wsq", "echo": True})
    check(status == 200 and [m["id"] for m in body["messages"]] == ids, "message_list")
    status, body = send("message_get", {"queue_name": "wsq", "message_id": ids[0]})
    check(status == 200 and body["messages"]["body"] == {"n": 0}, "message_get")
    status, body = send("message_get_many", {"queue_name": "wsq", "message_ids": ids[1:3]})
    check(status == 200 and [m["id"] for m in body["messages"]] == ids[1:3], "message_get_many")

    status, body = send("claim_create", {"queue_name": "wsq", "limit": 2, "ttl": 120, "grace": 60})
    cid = body["claim_id"]
    check(status == 201 and [m["id"] for m in body["messages"]] == ids[:2], "claim_create")
    status, body = send("claim_get", {"queue_name": "wsq", "claim_id": cid})
    check(status == 200 and body["ttl"] == 120 and len(body["messages"]) == 2, "claim_get")
    status, _ = send("claim_update", {"queue_name": "wsq", "claim_id": cid, "ttl": 300})
    check(status == 204, "claim_update")
    try:
        send("message_delete", {"queue_name": "wsq", "message_id": ids[0]})
        check(False, "delete of a claimed message without its claim is refused")
    except errors.ForbiddenError:
        check(True, "delete of a claimed message without its claim: ForbiddenError")
    status, _ = send("message_delete", {"queue_name": "wsq", "message_id": ids[0], "claim_id": cid})
    check(status == 204, "message_delete with claim")
    status, _ = send("claim_delete", {"queue_name": "wsq", "claim_id": cid})
    check(status == 204, "claim_delete")
    status, body = send("queue_get_stats", {"queue_name": "wsq"})
    check(status == 200 and body["messages"]["total"] == 3, "queue_get_stats")
    status, body = send("message_delete_many", {"queue_name": "wsq", "pop": 1})
    check(status == 200 and [m["id"] for m in body["messages"]] == [ids[1]], "message_delete_many pop")
    status, _ = send("message_delete_many", {"queue_name": "wsq", "message_ids": [ids[2]]})
    check(status == 204, "message_delete_many ids")

    status, body = send("subscription_create", {"queue_name": "wsq", "ttl": 600})
    sid = body["subscription_id"]
    check(status == 201, "subscription_create (this socket)")
    status, body = send("subscription_list", {"queue_name": "wsq"})
    check(status == 200 and [s["id"] for s in body["subscriptions"]] == [sid], "subscription_list")
    status, body = send("message_post", {"queue_name": "wsq", "messages": [{"body": "pushed", "ttl": 120}]})
    pushed_id = body["message_ids"][0]
    # Pushes follow the answer to the post that caused them: the next frame.
    push = trans.recv()
    check(push.get("Message_Type") == "Notification" and push["body"] == "pushed" and push["id"] == pushed_id and push["queue_name"] == "wsq", "the pushed message")
    # Exactly one push: a second copy (the Redis pool's pub/sub announcement of the same post)
    # would be read by the client as the answer to its next request, and fail the check below.
    status, _ = send("subscription_delete", {"queue_name": "wsq", "subscription_id": sid})
    check(status == 204, "subscription_delete")

    try:
        send("queue_create", {"queue_name": "bad name"})
        check(False, "a bad queue name is refused")
    except errors.MalformedRequest as ex:
        check("not valid" in str(ex), "a bad queue name: MalformedRequest")
    try:
        send("message_get", {"queue_name": "wsq", "message_id": "0000"})
        check(False, "a missing message is refused")
    except errors.ResourceNotFound:
        check(True, "a missing message: ResourceNotFound")
    status, _ = send("queue_purge", {"queue_name": "wsq"})
    check(status == 204, "queue_purge")
    status, _ = send("queue_delete", {"queue_name": "wsq"})
    check(status == 204, "queue_delete")
finally:
    trans.cleanup()
print("DONE")
