"""A tiny SageMaker control plane over real HTTP (awsJson1.1, as botocore speaks it), for faults
that moto and the Stubber cannot show: it throttles the first N requests, so botocore's own
retries really run, and it can make an endpoint go Failed with a reason."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

ARN = "arn:aws:sagemaker:eu-west-1:123456789012"


class FakeSageMaker:
    """Models, endpoint configs and endpoints in memory. `throttle` requests are answered with
    ThrottlingException first; an endpoint is Creating for `describes_until_settled`
    DescribeEndpoint calls, then InService, or Failed with `failure_reason` if one is set."""

    def __init__(self, throttle: int = 0, failure_reason: str = "") -> None:
        self.throttle = throttle
        self.failure_reason = failure_reason
        self.describes_until_settled = 2
        self.requests: list[SimpleNamespace] = []
        self.models: dict[str, dict] = {}
        self.configs: dict[str, dict] = {}
        self.endpoints: dict[str, dict] = {}
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                operation = self.headers["X-Amz-Target"].split(".")[-1]
                with fake.lock:
                    status, answer = fake.answer(operation, body, self.headers)
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def calls(self, operation: str) -> list[SimpleNamespace]:
        return [request for request in self.requests if request.operation == operation]

    def answer(self, operation: str, body: dict, headers: object) -> tuple[int, dict]:
        throttled = self.throttle > 0
        self.requests.append(
            SimpleNamespace(
                operation=operation,
                invocation=headers.get("amz-sdk-invocation-id", ""),
                throttled=throttled,
            )
        )
        if throttled:
            self.throttle -= 1
            return 400, {"__type": "ThrottlingException", "message": "Rate exceeded"}
        return getattr(self, operation)(body)

    @staticmethod
    def missing(kind: str, name: str) -> tuple[int, dict]:
        message = f'Could not find {kind} "{ARN}:{kind.replace(" ", "-")}/{name}".'
        return 400, {"__type": "ValidationException", "message": message}

    @staticmethod
    def exists(kind: str, name: str) -> tuple[int, dict]:
        message = f'Cannot create already existing {kind} "{ARN}:{kind}/{name}".'
        return 400, {"__type": "ValidationException", "message": message}

    def CreateModel(self, body: dict) -> tuple[int, dict]:
        name = body["ModelName"]
        if name in self.models:
            return self.exists("model", name)
        self.models[name] = body | {"ModelArn": f"{ARN}:model/{name}", "CreationTime": time.time()}
        return 200, {"ModelArn": self.models[name]["ModelArn"]}

    def DescribeModel(self, body: dict) -> tuple[int, dict]:
        found = self.models.get(body["ModelName"])
        return (200, found) if found else self.missing("model", body["ModelName"])

    def CreateEndpointConfig(self, body: dict) -> tuple[int, dict]:
        name = body["EndpointConfigName"]
        if name in self.configs:
            return self.exists("endpoint configuration", name)
        arn = f"{ARN}:endpoint-config/{name}"
        self.configs[name] = body | {"EndpointConfigArn": arn, "CreationTime": time.time()}
        return 200, {"EndpointConfigArn": arn}

    def DescribeEndpointConfig(self, body: dict) -> tuple[int, dict]:
        found = self.configs.get(body["EndpointConfigName"])
        name = body["EndpointConfigName"]
        return (200, found) if found else self.missing("endpoint configuration", name)

    def CreateEndpoint(self, body: dict) -> tuple[int, dict]:
        name = body["EndpointName"]
        if name in self.endpoints:
            return self.exists("endpoint", name)
        self.endpoints[name] = {
            "EndpointName": name,
            "EndpointArn": f"{ARN}:endpoint/{name}",
            "EndpointConfigName": body["EndpointConfigName"],
            "EndpointStatus": "Creating",
            "CreationTime": time.time(),
            "LastModifiedTime": time.time(),
            "describes": 0,
        }
        return 200, {"EndpointArn": self.endpoints[name]["EndpointArn"]}

    def DescribeEndpoint(self, body: dict) -> tuple[int, dict]:
        found = self.endpoints.get(body["EndpointName"])
        if found is None:
            return self.missing("endpoint", body["EndpointName"])
        found["describes"] += 1
        settles = found["describes"] >= self.describes_until_settled
        if found["EndpointStatus"] == "Creating" and settles:
            found["EndpointStatus"] = "Failed" if self.failure_reason else "InService"
            found["LastModifiedTime"] = time.time()
            if self.failure_reason:
                found["FailureReason"] = self.failure_reason
        answer = {key: value for key, value in found.items() if key != "describes"}
        return 200, answer

    def ListEndpoints(self, body: dict) -> tuple[int, dict]:
        summaries = [
            {
                key: endpoint[key]
                for key in (
                    "EndpointName",
                    "EndpointArn",
                    "CreationTime",
                    "LastModifiedTime",
                    "EndpointStatus",
                )
            }
            for endpoint in self.endpoints.values()
        ]
        return 200, {"Endpoints": summaries}
