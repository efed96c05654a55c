"""Random sequences of tree operations against the API, next to a plain in-memory model: after
every step the server's tree (a fresh snapshot) and the tree a client replays from the feed
must both equal the model's."""

import asyncio
import itertools
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import register_account, upload_file
from tests.sync.feed import ReplayClient, server_tree

T = TypeVar("T")
NAMES = st.sampled_from(["a", "b", "c.txt"])
accounts = itertools.count()


@dataclass
class ModelNode:
    parent: str | None
    name: str
    kind: str
    revision_id: str | None = None
    # The trash: the step that trashed it, and whether it is what the user deleted.
    trashed_at: int | None = None
    trash_root: bool = False


class TreeModel:
    def __init__(self) -> None:
        self.nodes: dict[str, ModelNode] = {}
        self.clock = 0

    def path(self, node_id: str | None) -> str:
        if node_id is None:
            return ""
        node = self.nodes[node_id]
        return f"{self.path(node.parent)}/{node.name}"

    def live(self, kind: str | None = None) -> list[str]:
        return sorted(
            node_id
            for node_id, node in self.nodes.items()
            if node.trashed_at is None and kind in (None, node.kind)
        )

    def child(self, parent: str | None, name: str) -> str | None:
        for node_id in self.live():
            node = self.nodes[node_id]
            if (node.parent, node.name) == (parent, name):
                return node_id
        return None

    def within(self, root: str, node_id: str | None) -> bool:
        while node_id is not None:
            if node_id == root:
                return True
            node_id = self.nodes[node_id].parent
        return False

    def trash(self, root: str) -> None:
        self.clock += 1
        for node_id in self.live():
            if self.within(root, node_id):
                self.nodes[node_id].trashed_at = self.clock
        self.nodes[root].trash_root = True

    def tree(self) -> dict[str, tuple[str, str | None]]:
        return {
            self.path(node_id): (self.nodes[node_id].kind, self.nodes[node_id].revision_id)
            for node_id in self.live()
        }


class SyncMachine(RuleBasedStateMachine):
    loop: asyncio.AbstractEventLoop
    client: httpx.AsyncClient
    web: httpx.AsyncClient
    engine: AsyncEngine

    def __init__(self) -> None:
        super().__init__()
        self.model = TreeModel()
        self.account = self.run(
            register_account(self.client, f"model{next(accounts)}@example.com", engine=self.engine)
        )
        self.replay = ReplayClient()
        self.run(self.replay.sync(self.client, self.account))
        self.bytes = itertools.count()

    def run(self, step: Coroutine[Any, Any, T]) -> T:
        # Hypothesis drives this machine in a worker thread; the app lives on the test loop.
        return asyncio.run_coroutine_threadsafe(step, self.loop).result(timeout=120)

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self.run(self.client.request(method, url, headers=self.account.headers, **kwargs))

    def folder_choice(self, data: st.DataObject) -> str | None:
        return data.draw(st.sampled_from([None, *self.model.live("folder")]))

    @rule(data=st.data(), name=NAMES)
    def upload(self, data: st.DataObject, name: str) -> None:
        parent = self.folder_choice(data)
        existing = self.model.child(parent, name)
        content = f"bytes {next(self.bytes)}".encode()
        folder = self.model.path(parent) or "/"
        if existing is not None and self.model.nodes[existing].kind == "folder":
            response = self.run(
                self.client.post(
                    "/upload/",
                    json={"filename": name, "size": len(content), "folder": folder},
                    headers=self.account.headers,
                )
            )
            assert response.status_code == 409, response.text
            return
        read = self.run(
            upload_file(self.client, self.web, self.account, name, content, folder=folder)
        )
        if existing is None:
            self.model.nodes[read["file_id"]] = ModelNode(parent, name, "file")
        assert read["file_id"] == (existing or read["file_id"])
        self.model.nodes[read["file_id"]].revision_id = read["revision_id"]

    @rule(data=st.data(), name=NAMES)
    def create_folder(self, data: st.DataObject, name: str) -> None:
        parent = self.folder_choice(data)
        existing = self.model.child(parent, name)
        response = self.request(
            "POST", "/folders", json={"path": f"{self.model.path(parent)}/{name}"}
        )
        if existing is None:
            assert response.status_code == 201, response.text
            self.model.nodes[response.json()["folder_id"]] = ModelNode(parent, name, "folder")
        elif self.model.nodes[existing].kind == "folder":
            assert response.status_code == 200, response.text
        else:
            assert response.status_code == 409, response.text

    @precondition(lambda self: self.model.live())
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        node_id = data.draw(st.sampled_from(self.model.live()))
        kind = self.model.nodes[node_id].kind
        response = self.request("DELETE", f"/{kind}s/{node_id}")
        assert response.status_code == 204, response.text
        self.model.trash(node_id)

    @precondition(lambda self: self.model.live())
    @rule(data=st.data(), rename=st.one_of(st.none(), NAMES))
    def move(self, data: st.DataObject, rename: str | None) -> None:
        node_id = data.draw(st.sampled_from(self.model.live()))
        node = self.model.nodes[node_id]
        target = self.folder_choice(data)
        name = rename or node.name
        body = {"parent_path": self.model.path(target) or "/", "name": name}
        response = self.request("PATCH", f"/{node.kind}s/{node_id}", json=body)
        if node.kind == "folder" and self.model.within(node_id, target):
            assert response.status_code == 409, response.text
        elif (target, name) == (node.parent, node.name):
            assert response.status_code == 200, response.text
        elif self.model.child(target, name) is not None:
            assert response.status_code == 409, response.text
        else:
            assert response.status_code == 200, response.text
            node.parent, node.name = target, name

    @precondition(
        lambda self: any(node.trash_root and node.trashed_at for node in self.model.nodes.values())
    )
    @rule(data=st.data())
    def restore(self, data: st.DataObject) -> None:
        roots = sorted(
            node_id
            for node_id, node in self.model.nodes.items()
            if node.trash_root and node.trashed_at is not None
        )
        node_id = data.draw(st.sampled_from(roots))
        node = self.model.nodes[node_id]
        response = self.request("POST", f"/{node.kind}s/{node_id}/restore")
        parent = node.parent
        if parent is not None and self.model.nodes[parent].trashed_at is not None:
            parent = None
        if self.model.child(parent, node.name) is not None:
            assert response.status_code == 409, response.text
            return
        assert response.status_code == 200, response.text
        moment = node.trashed_at
        for other_id, other in self.model.nodes.items():
            if other.trashed_at == moment and self.model.within(node_id, other_id):
                other.trashed_at = None
        node.parent, node.trash_root = parent, False

    @invariant()
    def server_and_replayed_feed_match_the_model(self) -> None:
        expected = self.model.tree()
        assert self.run(server_tree(self.client, self.account)) == expected
        self.run(self.replay.sync(self.client, self.account))
        assert self.replay.paths() == expected


async def test_random_operations_keep_server_feed_and_model_in_step(
    client: httpx.AsyncClient, web: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    machine = type(
        "BoundSyncMachine",
        (SyncMachine,),
        {"loop": asyncio.get_running_loop(), "client": client, "web": web, "engine": engine},
    )
    await asyncio.to_thread(
        run_state_machine_as_test,
        machine,
        settings=settings(
            max_examples=8,
            stateful_step_count=12,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
