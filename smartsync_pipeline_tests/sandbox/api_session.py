"""A deliberately plain QBO HTTP caller for the sandbox tests (requests, no retries, no magic), so a
test sees exactly what the sandbox sent."""

from __future__ import annotations

from typing import Any

import requests

from smartsync_pipeline.sandbox.process import SandboxProcess


class SandboxApi:
    def __init__(self, sandbox: SandboxProcess, realm_id: str | None = None, access_token: str | None = None):
        self.sandbox = sandbox
        self.info = sandbox.info
        self.realm_id = realm_id or sandbox.realm_id
        token = access_token
        if token is None:
            token = next(r["access_token"] for r in self.info["realms"] if r["realm_id"] == self.realm_id)
        self.access_token = token
        self.http = requests.Session()

    @property
    def base(self) -> str:
        return f"{self.info['api_base']}/company/{self.realm_id}"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}", "Accept": "application/json"}

    def get(self, path: str, **params: Any) -> requests.Response:
        params.setdefault("minorversion", 75)
        return self.http.get(f"{self.base}/{path}", params=params, headers=self.headers(), timeout=60)

    def post(self, path: str, body: Any, **params: Any) -> requests.Response:
        params.setdefault("minorversion", 75)
        return self.http.post(f"{self.base}/{path}", params=params, json=body, headers=self.headers(), timeout=60)

    def query_response(self, text: str) -> requests.Response:
        return self.get("query", query=text)

    def query(self, text: str) -> dict[str, Any]:
        response = self.query_response(text)
        assert response.status_code == 200, response.text
        return response.json()["QueryResponse"]

    def rows(self, text: str, entity: str) -> list[dict[str, Any]]:
        return self.query(text).get(entity, [])

    def count(self, text: str) -> int:
        return int(self.query(text)["totalCount"])

    def read(self, entity: str, object_id: str) -> dict[str, Any]:
        response = self.get(f"{entity.lower()}/{object_id}")
        assert response.status_code == 200, response.text
        return response.json()[entity]

    def write(self, entity: str, body: dict[str, Any], operation: str | None = None) -> requests.Response:
        params = {"operation": operation} if operation else {}
        return self.post(entity.lower(), body, **params)

    def cdc(self, entities: str, changed_since: str) -> requests.Response:
        return self.get("cdc", entities=entities, changedSince=changed_since)

    def refresh(self, refresh_token: str, client: tuple[str, str] | None = None) -> requests.Response:
        auth = client or (self.info["client_id"], self.info["client_secret"])
        return requests.post(
            self.info["token_url"],
            auth=auth,
            data={"grant_type": "refresh_token", "refresh_token": refresh_token},
            headers={"Accept": "application/json"},
            timeout=30,
        )

    def all_objects(self, entity: str) -> dict[str, Any]:
        return self.sandbox.control(f"objects/{self.realm_id}/{entity}", method="GET")
