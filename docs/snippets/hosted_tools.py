"""Hosted tools: the API runs them; their items come back as ServerItem parts, kept in order."""

from openai_ws import Client, Context, HostedTool, UserMessage
from openai_ws.events import HostedToolEvent, TextDelta
from openai_ws.testing import FakeResponsesServer, HostedCall, ScriptedModel, Text

search = HostedCall("web_search_call", {"action": {"type": "search", "query": "Berlin news"}})
script = ScriptedModel([[search, Text("Berlin Art Week opens today.")], "You're welcome."])

with (
    FakeResponsesServer(model=script) as server,
    Client(api_key="sk-test", base_url=server.http_base_url) as client,
):
    ctx = Context(
        messages=[UserMessage("What's on in Berlin?")],
        tools=[HostedTool({"type": "web_search"})],  # sent verbatim
    )
    for event in client.stream("gpt-5.2", ctx, session_id="news"):
        if isinstance(event, HostedToolEvent):  # type "hosted_tool": progress of the search
            print(f"[{event.item_type}: {event.status}]")
        elif isinstance(event, TextDelta):
            print(event.delta, end="", flush=True)
    print()
    message = event.message
    (item,) = message.server_items  # the web_search_call item, as the API sent it
    print(item.type, item.status, item.item["action"]["query"])
    assert item.item["action"]["query"] == "Berlin news"

    # the next turn keeps it: a full request replays the item verbatim, in order
    ctx.messages += [message, UserMessage("Thanks!")]
    print(client.stream("gpt-5.2", ctx, session_id="news").result().text)
