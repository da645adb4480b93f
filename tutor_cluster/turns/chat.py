"""OpenAI-style chat through the same tiers as a turn: edge analysis of the last message (an answer the edge can
settle never reaches a model), then the router's answer. No learner memory: a chat client names no learner."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from tutor_cluster.core import prompts
from tutor_cluster.errors import Forbidden, NotFound
from tutor_cluster.identity import Principal
from tutor_cluster.routing.events import DeltaEvent, DoneEvent, RouteEvent
from tutor_cluster.routing.requests import CoreRequest
from tutor_cluster.turns.service import Tiers, ms
from tutor_cluster.turns.types import ChatAnswer, ChatDone, ChatInput, ChatStream


class ChatService:
    """``POST /v1/chat/completions`` without HTTP."""

    def __init__(self, tiers: Tiers) -> None:
        self._t = tiers

    def resolve_model(self, name: str) -> str | None:
        """None for 'auto' (the router chooses), else the catalogue model; :class:`NotFound` for any other."""
        if name == "auto":
            return None
        catalogue = self._t.settings.catalogue
        if catalogue.get(name) is None:
            known = ", ".join(["auto", *(m.name for m in catalogue.models)])
            raise NotFound(f"unknown model {name!r}; available: {known}", kind="model_not_found", field="model")
        return name

    async def chat(self, chat: ChatInput, principal: Principal, *, stream: bool) -> ChatAnswer | ChatStream:
        """The whole answer, or (``stream``, for a model answer) the stream, its first batch received."""
        t = self._t
        t0 = t.clock()
        if chat.user:  # a registered learner of another region is served there (its secret, its replicas)
            t.learners.check_home(chat.user, field="user")
        if principal.learner_id:  # a learner's own key (or token) is served in their home region
            t.learners.check_home(principal.learner_id, field="Authorization")
        pinned = self.resolve_model(chat.model)
        for i, m in enumerate(chat.messages):
            if m["role"] == "system" and "system_prompt" not in principal.scopes:
                raise Forbidden(f"API key {principal.key_id!r} may not send system or developer messages (they "
                                "instruct the model); ask for the 'system_prompt' scope", field=f"messages[{i}].role",
                                code="insufficient_scope")
        earlier = [i for i, m in enumerate(chat.messages[:-1]) if m["role"] == "user"]
        edge, edge_ms = await t.analyse(chat.messages[-1]["content"], chat.exercise_id,
                                        [chat.messages[i]["content"] for i in earlier])
        chat_id = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        if edge.reply is not None:
            turn = t.edge_result(chat_id, edge, edge.reply, {"edge": edge_ms}, t0)
            return ChatAnswer(id=chat_id, created=created, model=chat.model, text=turn.reply,
                              tutor={"tier": "edge", "reason": turn.reason, "cost": 0.0,
                                     "latency_ms": turn.latency_ms})
        messages = [dict(m) for m in chat.messages[:-1]]  # every learner message as the edge screened it
        for i, text in zip(earlier, edge.history, strict=True):
            messages[i]["content"] = text
        messages.append({"role": "user", "content": edge.signals.text})
        request = CoreRequest(
            request_id=chat_id, messages=prompts.chat_messages(messages, mode=chat.mode), signals=edge.signals,
            model=pinned, max_tokens=chat.max_tokens, **chat.sampling, tenant=principal.tenant,
            learner_ref=t.learners.pseudonyms.pseudonym(principal.tenant, chat.user) if chat.user else None,
        )

        def tutor(route: RouteEvent | None, done: DoneEvent) -> dict[str, Any]:
            return {"tier": route.tier if route else None, "reason": route.reason if route else None,
                    "cost": done.cost, "latency_ms": {"edge": edge_ms, **done.timings_ms.model_dump(),
                                                      "total": ms(t.clock() - t0)}}

        if not stream:
            answer = await t.answers.whole(request)
            t.recorder.model(answer.done)
            return ChatAnswer(id=chat_id, created=created, model=chat.model if pinned else answer.route.model,
                              text=answer.text, finish_reason=answer.done.finish_reason, usage=answer.done.usage,
                              logprobs=answer.logprobs, tutor=tutor(answer.route, answer.done))
        events = self._events(await t.answers.stream(request), chat.model, pinned is not None, tutor)
        return ChatStream(id=chat_id, created=created, model=chat.model, events=events)

    async def _events(self, stream: AsyncIterator[list[RouteEvent | DeltaEvent | DoneEvent]], model: str,
                      pinned: bool, tutor: Any) -> AsyncIterator[list[RouteEvent | DeltaEvent | ChatDone]]:
        route: RouteEvent | None = None
        async for batch in stream:
            out: list[RouteEvent | DeltaEvent | ChatDone] = []
            for event in batch:
                if isinstance(event, DoneEvent):
                    self._t.recorder.model(event)
                    out.append(ChatDone(model=model if pinned or route is None else route.model,
                                        finish_reason=event.finish_reason, usage=event.usage,
                                        tutor=tutor(route, event)))
                    continue
                if isinstance(event, RouteEvent):
                    route = event
                out.append(event)
            yield out
