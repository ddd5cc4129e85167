"""Two workers share one chain store: the second continues the first's stored chain."""

from openai_ws import Client, Context, MemoryChainStore, StreamOptions, UserMessage
from openai_ws.testing import FakeResponsesServer

with FakeResponsesServer() as server:
    # in production, each worker process makes its own:
    #   Client(chain_store=RedisChainStore("redis://redis.internal:6379/0"), max_sockets=64)
    store = MemoryChainStore()
    settings = {"api_key": "sk-emulator", "base_url": server.http_base_url, "chain_store": store}
    options = StreamOptions(store=True)  # the server keeps the response: any socket can chain
    with Client(**settings, max_sockets=8) as worker_a, Client(**settings) as worker_b:
        context = Context(system_prompt="You are terse.", messages=[UserMessage("Hello")])
        answer = worker_a.stream("gpt-5.2", context, session_id="chat-1", options=options)
        context.messages += [answer.result(), UserMessage("And now?")]
        # the next turn lands on another worker, which has no socket for chat-1
        worker_b.stream("gpt-5.2", context, session_id="chat-1", options=options).result()
    for number, request in enumerate(server.requests, 1):
        chained = request.body.get("previous_response_id")
        kind = f"chained on {chained[:12]}..." if chained else "full request"
        print(f"turn {number}: {len(request.body['input'])} input item(s), {kind}")
