"""Drives Missive's topics (v2) with the real python-zaqarclient (Debian python3-zaqarclient 2.4).

That client has no topic calls of its own: Zaqar's topic routes are its queue routes under
/v2/topics (zaqar/transport/wsgi/v2_0/__init__.py). So this session gives the client an API whose
operations are its own v2 queue, message and subscription operations with `queues/` replaced by
`topics/`, and drives a topic through the client's own Queue, Message and Subscription objects:
the client builds every request and parses every answer as it does for queues.

Usage: zaqarclient_topics.py <base-url> <project> <receiver-url>
Subscribes <receiver-url>/main and <receiver-url>/fan; prints the ids posted to the fan-out topic
(FANOUT:), which it leaves in place for the caller to check the deliveries.
Prints one line per step and DONE; exits non-zero on the first failed check.
"""
import sys
import uuid

from zaqarclient.queues import client as zclient
from zaqarclient.queues.v1 import core
from zaqarclient.queues.v1 import iterator
from zaqarclient.queues.v2 import api
from zaqarclient.queues.v2 import client as v2client


def check(cond, what):
    if not cond:
        print("FAIL: " + what)
        sys.exit(1)
    print("ok: " + what)


class TopicApi(api.V2):
    """The client's v2 operations, addressed to /v2/topics instead of /v2/queues."""

    schema = {
        op: dict(spec, ref="topics" + spec["ref"][len("queues"):]) if spec.get("ref", "").startswith("queues") else spec
        for op, spec in api.V2.schema.items()
    }


class TopicClient(v2client.Client):
    def _request_and_transport(self):
        req, trans = super()._request_and_transport()
        req._api = TopicApi()
        return req, trans

    def topics(self, **params):
        req, trans = self._request_and_transport()
        listing = core.queue_list(trans, req, **params)
        return iterator._Iterator(self, listing, "topics", self.queues_module.create_object(self))


def main():
    url, project, receiver = sys.argv[1], sys.argv[2], sys.argv[3]
    subscriber = receiver + "/main"
    conf = {"auth_opts": {"backend": "noauth", "options": {"os_project_id": project}}}
    cli = zclient.Client(url, version=2, conf=conf)
    tc = TopicClient(url, version=2, conf=conf)
    name = "topic-" + uuid.uuid4().hex[:8]

    topic = tc.queue(name, force_create=True)
    check(name in [t.name for t in tc.topics()], "topic listed after create")
    check(name not in [q.name for q in cli.queues()[0]], "the topic is not a queue")
    meta = topic.metadata(new_meta={"description": "interop"})
    check(meta.get("description") == "interop", "metadata set with JSON Patch")
    check(topic.metadata(force_reload=True).get("_default_message_ttl") == 3600, "metadata read back with the topic defaults")

    sub = tc.subscription(name, subscriber=subscriber, ttl=3600, options={"k": "v"})
    check(bool(sub.id), "subscription created on the topic")
    again = tc.subscription(name, id=sub.id)
    check(again.subscriber == subscriber and again.ttl == 3600 and again.options == {"k": "v"}, "subscription read back")
    check([s.id for s in topic.subscriptions()] == [sub.id], "subscriptions listed")
    check(list(cli.queue(name, auto_create=False).subscriptions()) == [], "the queue of that name has none")
    again.update({"options": {"k": "w"}})
    check(tc.subscription(name, id=sub.id).options == {"k": "w"}, "subscription updated")

    res = topic.post([{"body": {"n": i}, "ttl": 600} for i in range(3)])
    ids = [h.split("/")[-1] for h in res["resources"]]
    check(len(ids) == 3 and all(h.startswith("/v2/topics/%s/messages/" % name) for h in res["resources"]), "3 messages posted")
    listed = list(topic.messages(echo=True))
    check([m.body for m in listed] == [{"n": 0}, {"n": 1}, {"n": 2}], "messages listed in order")
    check(topic.message(ids[1]).body == {"n": 1}, "one message by id")
    check(sorted(m.body["n"] for m in topic.messages(*ids[:2])) == [0, 1], "bulk get")
    stats = topic.stats
    check(stats["messages"]["total"] == 3, "stats count the messages")
    topic.delete_messages(ids[0])
    check(topic.stats["messages"]["total"] == 2, "bulk delete")
    popped = topic.pop(1)
    check(len(list(popped)) == 1 and topic.stats["messages"]["total"] == 1, "pop")

    topic.purge(resource_types=["messages"])
    check(topic.stats["messages"]["total"] == 0, "purged")
    sub.delete()
    check(list(topic.subscriptions()) == [], "subscription deleted")
    topic.delete()
    check(name not in [t.name for t in tc.topics()], "topic deleted")

    # Fan-out: two subscribers, messages posted through the client, left for the caller to check.
    fan = tc.queue(name + "-fan")
    for path in ("/fan", "/fan2"):
        check(bool(tc.subscription(fan.name, subscriber=receiver + path, ttl=3600).id), "fan-out subscriber " + path)
    res = fan.post([{"body": {"fan": i}} for i in range(3)])
    print("FANOUT: " + ",".join(h.split("/")[-1] for h in res["resources"]))
    print("DONE")


if __name__ == "__main__":
    main()
