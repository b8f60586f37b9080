"""The official `openai` Python client against the Inventiv proxy (run by the Rust test
`proxy::the_official_openai_client_works_through_the_proxy`, with BASE_URL, API_KEY, MODEL)."""

import os

import openai

client = openai.OpenAI(base_url=os.environ["BASE_URL"] + "/v1", api_key=os.environ["API_KEY"])
model = os.environ["MODEL"]

ids = [m.id for m in client.models.list()]
assert ids == [model], ids

reply = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hi"}])
assert reply.choices[0].message.content == "Hello!", reply
assert reply.usage.prompt_tokens == 1000 and reply.usage.completion_tokens == 500, reply.usage

chunks = list(client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hi"}], stream=True))
text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
assert text == "Hello!", text
assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 1000, chunks[-1]

embedding = client.embeddings.create(model=model, input="Hi")
assert embedding.data[0].embedding == [0.1, 0.2, 0.3], embedding

try:
    client.chat.completions.create(model="nobody/nothing", messages=[])
    raise AssertionError("an unknown model must be refused")
except openai.NotFoundError as err:
    assert err.status_code == 404
    assert err.code == "model_not_found", err.body

# A spend cap the call's worst case does not fit: the client reports OpenAI's error shape.
try:
    client.chat.completions.create(model=model, messages=[], max_tokens=8192, n=128)
    raise AssertionError("a call past the key's cap must be refused")
except openai.APIStatusError as err:
    assert err.status_code == 402, err
    assert err.code == "spend_cap_reached" and err.type == "insufficient_quota", err.body

print("openai client OK")
