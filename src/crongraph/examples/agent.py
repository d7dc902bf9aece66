"""The example graph `agent`: answers "What time is it?" from the clock, so a new user sees crongraph work with no
LLM and no network. Any other message gets a short hint."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AIMessage, AnyMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages


class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def answer(state: State) -> dict[str, Any]:
    question = state["messages"][-1].content if state["messages"] else ""
    if "time" in str(question).lower():
        text = f"It is {datetime.now(UTC):%H:%M:%S} UTC."
    else:
        text = 'I am the crongraph example agent. Ask me "What time is it?"'
    return {"messages": [AIMessage(content=text)]}


builder = StateGraph(State)
builder.add_node("answer", answer)
builder.add_edge(START, "answer")
builder.add_edge("answer", END)
graph = builder.compile()
