"""The OpenAI-compatible door driven by the official ``openai`` client: models, completions plain and streamed,
errors in OpenAI's shape, the routing decision in the extension field."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from fakes.llm import ScriptedBackend
from live_api import LiveApi, api_settings, live_api
from vy_nexus.config import Settings
from vy_nexus.system import VyNexus
from vy_nexus.tls import openai_context

REPLY = "The answer streamed by the scripted model"


def _http() -> openai.DefaultHttpxClient:
    return openai.DefaultHttpxClient(verify=openai_context())


def scripted_system(settings: Settings) -> VyNexus:
    return VyNexus(settings, llm=ScriptedBackend(REPLY, delay=0.005), load_plugins=False)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    with live_api(api_settings(tmp_path_factory.mktemp("openai") / "home"), scripted_system) as server:
        yield server


@pytest.fixture
def client(api: LiveApi) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{api.url}/v1", api_key=api.key, max_retries=0, http_client=_http()) as client:
        yield client


def test_models_lists_auto_and_every_expert(client: openai.OpenAI) -> None:
    ids = [model.id for model in client.models.list()]
    assert ids[0] == "auto"
    assert {"code", "data-analysis", "general", "research", "writing"} <= set(ids)


def test_a_completion_routes_the_last_user_message_and_says_how(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="auto",
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hello there, how are you today?"},
        ],
    )
    assert reply.object == "chat.completion"
    assert reply.choices[0].message.role == "assistant"
    assert reply.choices[0].message.content == REPLY
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and reply.usage.total_tokens > 0
    extension = (reply.model_extra or {})["vy_nexus"]
    assert extension["experts"] == ["general"]
    assert extension["decision"]["strategy"]


def test_naming_an_expert_as_the_model_skips_routing(api: LiveApi, client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="code", messages=[{"role": "user", "content": "def f(x):\n    return x +\n"}]
    )
    assert raw.headers["x-vy-nexus-experts"] == "code"
    reply = raw.parse()
    assert (reply.model_extra or {})["vy_nexus"]["decision"]["confidences"] == {"code": 1.0}
    assert reply.model == "code"


def test_streaming_sends_the_tokens_as_they_come_then_stop_and_done(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="general",
        messages=[{"role": "user", "content": "tell me something"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    texts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(texts) == len(REPLY.split(" "))  # one chunk per streamed token
    assert "".join(texts) == REPLY
    finishing = [c for c in chunks if c.choices and c.choices[0].finish_reason == "stop"]
    assert len(finishing) == 1
    assert (finishing[0].model_extra or {})["vy_nexus"]["experts"] == ["general"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None


def test_max_tokens_caps_the_answer_and_a_cut_answer_ends_with_length(client: openai.OpenAI) -> None:
    question = [{"role": "user", "content": "tell me something"}]
    cut = client.chat.completions.create(model="general", messages=question, max_tokens=3)
    assert cut.choices[0].message.content == " ".join(REPLY.split(" ")[:3])
    assert cut.choices[0].finish_reason == "length"
    newer = client.chat.completions.create(model="general", messages=question, max_completion_tokens=2, max_tokens=5)
    assert newer.choices[0].message.content == " ".join(REPLY.split(" ")[:2])  # the smaller of the two
    roomy = client.chat.completions.create(model="general", messages=question, max_tokens=500)
    assert roomy.choices[0].message.content == REPLY and roomy.choices[0].finish_reason == "stop"
    stream = client.chat.completions.create(model="general", messages=question, max_tokens=4, stream=True)
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == " ".join(REPLY.split(" ")[:4])
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["length"]
    with pytest.raises(openai.BadRequestError, match="max_tokens"):
        client.chat.completions.create(model="general", messages=question, max_tokens=0)


def test_an_answer_without_tokens_arrives_whole(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="writing", messages=[{"role": "user", "content": "count the words in this sentence"}], stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text.strip()


def test_an_unknown_model_is_a_404_in_openai_shape(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.code == "model_not_found" and caught.value.param == "model"
    assert "the model 'nope' does not exist here: use 'auto'" in caught.value.message
    with pytest.raises(openai.NotFoundError) as streamed:
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "hi"}], stream=True)
    assert streamed.value.code == "model_not_found"


def test_a_wrong_key_is_an_authentication_error(api: LiveApi) -> None:
    with (
        openai.OpenAI(base_url=f"{api.url}/v1", api_key="not-a-key", max_retries=0, http_client=_http()) as wrong,
        pytest.raises(openai.AuthenticationError),
    ):
        wrong.models.list()


def test_a_malformed_request_is_a_bad_request(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="auto", messages=[])


def test_the_async_client_works_too(api: LiveApi) -> None:
    import asyncio

    async def ask() -> str:
        async with openai.AsyncOpenAI(
            base_url=f"{api.url}/v1",
            api_key=api.key,
            max_retries=0,
            http_client=openai.DefaultAsyncHttpxClient(verify=openai_context()),
        ) as client:
            stream = await client.chat.completions.create(
                model="general", messages=[{"role": "user", "content": "hello"}], stream=True
            )
            return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    assert asyncio.run(ask()) == REPLY


def test_a_last_message_without_text_is_refused_and_says_why(client: openai.OpenAI) -> None:
    image = [{"type": "image_url", "image_url": {"url": "http://127.0.0.1:9/cat.png"}}]
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="auto", messages=[{"role": "user", "content": image}])
    assert "the last user message has image_url parts: vy-nexus reads text only" in str(caught.value)
    with pytest.raises(openai.BadRequestError, match="the last user message has no text to work on"):
        client.chat.completions.create(model="general", messages=[{"role": "user", "content": "  "}])
