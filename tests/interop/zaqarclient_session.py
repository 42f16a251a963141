"""Drives a running Missive with the real python-zaqarclient (Debian python3-zaqarclient).

Usage: zaqarclient_session.py <base-url> <api-version: 2 | 1.1> <project> <admin-token> <pool-uri>
Covers queues, metadata (JSON patch), post, list, get one, bulk get, claim, claim update, delete
with claim, release, stats, bulk delete, pop, purge, subscriptions (v2), ping, health, and pool + flavor CRUD (the
pool on <pool-uri>). Prints one line per step; exits non-zero on the first failed check.
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


def with_admin_token(cli, token):
    """The noauth backend sends no token: add the admin token to every request of this client."""
    prepare = cli._request_and_transport

    def prepared():
        req, trans = prepare()
        req.headers["X-Auth-Token"] = token
        return req, trans

    cli._request_and_transport = prepared
    return cli


def msg_id(m):
    return getattr(m, "id", None) or m._id


def main():
    url, version, project, admin_token, pool_uri = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
    conf = {"auth_opts": {"backend": "noauth", "options": {"os_project_id": project}}}
    cli = zclient.Client(url, version=version, conf=conf)
    admin = with_admin_token(zclient.Client(url, version=version, conf=conf), admin_token)
    name = "interop-" + uuid.uuid4().hex[:8]

    # create queue, with metadata
    q = cli.queue(name, force_create=True)
    check(name in queue_names(cli, version), "queue listed after create")
    if version >= 2:
        meta = q.metadata(new_meta={"description": "interop", "_default_message_ttl": 600})
        check(meta.get("description") == "interop", "metadata set with JSON Patch")
        check(q.metadata(force_reload=True).get("_default_message_ttl") == 600, "metadata read back")
        meta = q.metadata(new_meta={"description": "changed", "_default_message_ttl": 600})
        check(q.metadata(force_reload=True).get("description") == "changed", "metadata replaced with JSON Patch")

    # post, list, get one, bulk get
    posted = q.post([{"body": {"n": i, "big": 9007199254740993}, "ttl": 300} for i in range(5)])
    check(len(posted["resources"]) == 5, "posted 5 messages")
    msgs = list(q.messages(echo=True))
    check([m.body["n"] for m in msgs] == [0, 1, 2, 3, 4], "listed in FIFO order")
    check(msgs[0].body["big"] == 9007199254740993, "big integer body kept exactly")
    one = q.message(msg_id(msgs[0]))
    check(one.body["n"] == 0, "message fetched by id")
    bulk = list(q.messages(*[msg_id(m) for m in msgs[:3]]))
    check(sorted(m.body["n"] for m in bulk) == [0, 1, 2], "bulk get of 3 ids (sent as repeated ids=)")

    # claim, update claim (Zaqar validates only ttl on update), delete with claim id, release
    claim = q.claim(ttl=60, grace=60, limit=3)
    claimed = list(claim)
    check(len(claimed) == 3 and claim.id, "claimed 3 messages")
    claim.update(ttl=120, grace=30)
    again = q.claim(id=claim.id)
    check(again.ttl == 120, "claim updated (ttl 120, grace 30)")
    claimed[0].delete()
    check(len(list(q.claim(id=claim.id))) == 2, "deleted a message with its claim id")
    claim.delete()
    stats = q.stats
    check(stats["messages"]["claimed"] == 0, "claim released")
    check(stats["messages"]["total"] == 4, "stats total 4")
    check(stats["messages"]["free"] == 4, "stats free 4")

    # bulk delete (repeated ids=), then pop
    left = list(q.messages(echo=True))
    q.delete_messages(*[msg_id(m) for m in left[:2]])
    check(q.stats["messages"]["total"] == 2, "bulk delete removed 2 messages")
    popped = list(q.pop(count=1))
    check(len(popped) == 1, "popped 1 message")
    check(q.stats["messages"]["total"] == 1, "pop removed it")

    # claim the rest and consume everything
    rest = q.claim(ttl=60, grace=60, limit=10)
    got = list(rest)
    check(len(got) == 1, "the last message is claimable")
    for m in got:
        m.delete()
    check(q.stats["messages"]["total"] == 0, "all consumed")

    # purge (v2)
    if version >= 2:
        q.post([{"body": i, "ttl": 300} for i in range(3)])
        check(q.stats["messages"]["total"] == 3, "posted 3 to purge")
        q.purge()
        check(q.stats["messages"]["total"] == 0, "purged")

    # subscriptions (v2): create, get, list, update, delete
    if version >= 2:
        sub = cli.subscription(name, subscriber="http://hooks.example.com/interop", ttl=3600, options={"k": "v"})
        check(bool(sub.id), "subscription created")
        check(sub.subscriber == "http://hooks.example.com/interop" and sub.ttl == 3600, "subscription read back")
        check(sub.options == {"k": "v"} and sub.confirmed is False, "subscription options and confirmed flag")
        sub2 = cli.subscription(name, subscriber="mailto:ops@example.com", ttl=600)
        listed = list(q.subscriptions())
        check([s.id for s in listed] == [sub.id, sub2.id], "subscriptions listed in creation order")
        check(listed[0].subscriber == sub.subscriber and listed[1].ttl == 600, "listed subscriptions carry their fields")
        sub.update({"ttl": 7200, "options": {"k": "w"}})
        again = cli.subscription(name, id=sub.id, auto_create=False)
        again.ensure_exists()
        check(again.ttl == 7200 and again.options == {"k": "w"}, "subscription updated")
        sub.delete()
        sub2.delete()
        check(list(q.subscriptions()) == [], "subscriptions deleted")

    # ping, health
    if version >= 2:
        check(cli.ping() is True, "ping")
        health = admin.health()
        check(health.get("catalog_reachable") is True, "health: catalog reachable")
        pools = [v for k, v in health.items() if k != "catalog_reachable"]
        check(len(pools) >= 1 and all(p["storage_reachable"] for p in pools), "health: every pool reachable")
        check(all(set(p["message_volume"]) == {"free", "claimed", "total"} for p in pools), "health: message_volume")
        check(all(s["succeeded"] for p in pools for s in p["operation_status"].values()), "health: every probe step succeeded")
    else:
        check(admin.health() is True, "health")

    # pool + flavor CRUD
    tag = uuid.uuid4().hex[:6]
    pool_name, flavor_name = "interop-pool-" + tag, "interop-flavor-" + tag
    pool = admin.pool(pool_name, weight=10, uri=pool_uri, flavor=flavor_name)
    got = pool.get()
    check(got["name"] == pool_name and got["weight"] == 10 and got["flavor"] == flavor_name, "pool created and read")
    check("@" not in got["uri"] or "***@" in got["uri"], "pool uri shown without its password")
    pool.update({"weight": 20})
    check(pool.get()["weight"] == 20, "pool updated")
    check(pool_name in [p.name for p in admin.pools()], "pool listed")
    flavor = admin.flavor(flavor_name, pool_list=[pool_name])
    fgot = flavor.get()
    check(fgot["name"] == flavor_name, "flavor created and read")
    if version >= 2:
        check(fgot["pool_list"] == [pool_name], "flavor pool_list")
    else:
        check(fgot["pool"] == flavor_name, "v1.1 flavor names its pool group")
    flavor.update({"pool_list": [pool_name]})
    check(flavor_name in [f.name for f in admin.flavors()], "flavor listed")
    flavor.delete()
    check(flavor_name not in [f.name for f in admin.flavors()], "flavor deleted")
    pool.delete()
    check(pool_name not in [p.name for p in admin.pools()], "pool deleted")

    # delete queue
    q.delete()
    check(name not in queue_names(cli, version), "queue deleted")
    print("DONE")


if __name__ == "__main__":
    main()
