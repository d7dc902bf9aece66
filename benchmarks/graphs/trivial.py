"""The benchmark graph: one node that returns a constant update (the reference's "trivial one-node graph")."""

from typing import TypedDict

from langgraph.graph import END, START, StateGraph


class State(TypedDict, total=False):
    value: int


def step(state: State) -> State:
    return {"value": state.get("value", 0) + 1}


builder = StateGraph(State)
builder.add_node("step", step)
builder.add_edge(START, "step")
builder.add_edge("step", END)
graph = builder.compile()
