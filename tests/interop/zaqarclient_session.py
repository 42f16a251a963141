"""Drives a running Missive with the real python-zaqarclient (Debian python3-zaqarclient).

Usage: zaqarclient_session.py <base-url> <api-version: 2 | 1.1> <project>
Prints one line per step; exits non-zero on the first failed check.
"""
import sys
import uuid

from zaqarclient.queues import client as zclient


def check(cond, what):
    if not cond:
        print("FAIL: " + what)
        sys.exit(1)
    print("ok: " + what)


def queue_names(cli, version):
    listing = cli.queues()
    if version >= 2:
        listing = listing[0]  # v2 returns (iterator, count)
    return [x.name for x in listing]


def main():
    url, version, project = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    conf = {"auth_opts": {"backend": "noauth", "options": {"os_project_id": project}}}
    cli = zclient.Client(url, version=version, conf=conf)
    name = "interop-" + uuid.uuid4().hex[:8]

    # create queue, with metadata
    q = cli.queue(name, force_create=True)
    check(name in queue_names(cli, version), "queue listed after create")
    if version >= 2:
        meta = q.metadata(new_meta={"description": "interop", "_default_message_ttl": 600})
        check(meta.get("description") == "interop", "metadata set with JSON Patch")
        check(q.metadata(force_reload=True).get("_default_message_ttl") == 600, "metadata read back")

    # post, list
    posted = q.post([{"body": {"n": i, "big": 9007199254740993}, "ttl": 300} for i in range(5)])
    check(len(posted["resources"]) == 5, "posted 5 messages")
    msgs = list(q.messages(echo=True))
    check([m.body["n"] for m in msgs] == [0, 1, 2, 3, 4], "listed in FIFO order")
    check(msgs[0].body["big"] == 9007199254740993, "big integer body kept exactly")
    one = q.message(getattr(msgs[0], "id", None) or msgs[0]._id)
    check(one.body["n"] == 0, "message fetched by id")

    # claim, update claim, delete with claim id, release
    claim = q.claim(ttl=60, grace=60, limit=3)
    claimed = list(claim)
    check(len(claimed) == 3 and claim.id, "claimed 3 messages")
    claim.update(ttl=120, grace=60)
    again = q.claim(id=claim.id)
    check(again.ttl == 120, "claim updated (ttl 120)")
    claimed[0].delete()
    check(len(list(q.claim(id=claim.id))) == 2, "deleted a message with its claim id")
    claim.delete()
    stats = q.stats
    check(stats["messages"]["claimed"] == 0, "claim released")
    check(stats["messages"]["total"] == 4, "stats total 4")

    # claim the rest and consume everything
    rest = q.claim(ttl=60, grace=60, limit=10)
    got = list(rest)
    check(len(got) == 4, "released messages claimable again")
    for m in got:
        m.delete()
    check(q.stats["messages"]["total"] == 0, "all consumed")

    # delete queue
    q.delete()
    check(name not in queue_names(cli, version), "queue deleted")
    print("DONE")


if __name__ == "__main__":
    main()
