"""Known document shapes: the layout and field mapping each library writes.

``preset = "NAME"`` in a container's section (``[containers.messages]``) sets what
these say; explicit keys of the section and of ``[fields.messages]`` still win.
Each preset is read from the library's own source, not guessed: the module it
imitates is named beside it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Preset:
    """A layout and the source fields it maps (other columns keep their default fields)."""

    layout: str = "message"
    fields: Mapping[str, str] = field(default_factory=dict)
    where_type: str | None = None


PRESETS: dict[str, Preset] = {
    # This project's own default names (pipelines.schema.CANONICAL_FIELDS).
    "agentdash": Preset(),
    # langchain_community / langchain_azure_ai chat_message_histories/cosmos_db.py,
    # CosmosDBChatMessageHistory.upsert_messages: one document per session,
    # {"id": session_id, "user_id": ..., "messages": messages_to_dict(...)}, each message
    # {"type": "human"|"ai"|"system"|"tool", "data": BaseMessage.model_dump()}; an AIMessage's
    # data holds usage_metadata (langchain_core.messages.ai.UsageMetadata) and, from
    # langchain_openai, response_metadata.model_name.  No message records a time: the
    # document's _ts is its messages'.
    "langchain": Preset(
        layout="session",
        fields={
            "id": "data.id",
            "conversation_id": "id",
            "agent_id": "data.name",
            "role": "type",
            "timestamp": "_ts",
            "user_id": "user_id",
            "content": "data.content",
            "tokens_in": "data.usage_metadata.input_tokens",
            "tokens_out": "data.usage_metadata.output_tokens",
            "tokens_cached_in": "data.usage_metadata.input_token_details.cache_read",
            "model": "data.response_metadata.model_name",
        },
    ),
    # microsoft/sample-app-aoai-chatGPT backend/history/cosmosdbservice.py,
    # CosmosConversationClient.create_message: {"id", "type": "message", "userId",
    # "createdAt": datetime.utcnow().isoformat(), "updatedAt", "conversationId", "role",
    # "content"} (and "feedback"); create_conversation writes "type": "conversation"
    # documents into the same container.
    "aoai-chat": Preset(
        fields={"timestamp": "createdAt"},
        where_type="message",
    ),
    # microsoft/agent-framework python/packages/azure-cosmos/agent_framework_azure_cosmos/
    # _history_provider.py, CosmosHistoryProvider.save_messages: one document per message,
    # {"id": uuid4, "session_id", "sort_key": time.time_ns() + index, "source_id",
    # "message": Message.to_dict()} with the role, author_name and contents there.  The
    # agent is the provider's source_id, which every message of an agent's sessions
    # carries (a user's message has no author_name).
    "agent-framework": Preset(
        fields={
            "conversation_id": "session_id",
            "agent_id": "source_id",
            "role": "message.role",
            "timestamp": "sort_key",
            "content": "message.contents",
        },
    ),
}
