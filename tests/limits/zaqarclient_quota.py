"""The real python-zaqarclient (Debian python3-zaqarclient) meets Missive's quotas (docs/limits.md).

Usage: zaqarclient_quota.py <base-url> <project>
Against a service with quotas {queuesPerProject: 2, messagesPerQueue: 3}: posts up to the quota of
messages, then one more (ForbiddenError, the queue unchanged); creates queues up to the quota of
queues, then one more (ForbiddenError). Prints one line per step and DONE; exits non-zero on the
first failed check.
"""
import sys

from zaqarclient.queues import client as zclient
from zaqarclient.transport import errors


def check(cond, what):
    if not cond:
        print("FAIL: " + what)
        sys.exit(1)
    print("ok: " + what)


def refused(fn):
    """The error python-zaqarclient raises for the call, or None when it passes."""
    try:
        fn()
    except errors.TransportError as e:
        return e
    return None


def main():
    url, project = sys.argv[1], sys.argv[2]
    conf = {"auth_opts": {"backend": "noauth", "options": {"os_project_id": project}}}
    cli = zclient.Client(url, version=2, conf=conf)
    q = cli.queue("quota-a")
    q.post([{"body": i, "ttl": 300} for i in range(3)])
    check(q.stats["messages"]["total"] == 3, "3 messages: at the quota of 3")
    e = refused(lambda: q.post([{"body": "over", "ttl": 300}]))
    check(isinstance(e, errors.ForbiddenError), "a fourth message: ForbiddenError (403), got %r" % (e,))
    check("at most 3 messages" in str(e), "the error says why: %s" % (e,))
    check(q.stats["messages"]["total"] == 3, "nothing stored")

    cli.queue("quota-b").ensure_exists(force_create=True)
    names = sorted(x.name for x in cli.queues()[0])
    check(names == ["quota-a", "quota-b"], "two queues: at the quota of 2 (%s)" % names)
    e = refused(lambda: cli.queue("quota-c", auto_create=False).ensure_exists(force_create=True))
    check(isinstance(e, errors.ForbiddenError), "a third queue: ForbiddenError (403), got %r" % (e,))
    names = sorted(x.name for x in cli.queues()[0])
    check(names == ["quota-a", "quota-b"], "nothing created (%s)" % names)
    print("DONE")


if __name__ == "__main__":
    main()
