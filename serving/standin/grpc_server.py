"""The stand-in's gRPC API: PredictionService (Predict, Classify, Regress, MultiInference,
GetModelMetadata) and ModelService (GetModelStatus) over a ModelRepository, with its metrics.
"""

from __future__ import annotations

import time

from components.serving_check.tf_serving_requests import ServingError, invalid_argument
from serving.standin.repository import ModelRepository


def grpc_servicers(repository: ModelRepository):
    import grpc
    from tensorflow_serving.apis import (
        model_service_pb2_grpc,
        prediction_service_pb2_grpc,
    )

    def call(method, request, context, api: str | None = None):
        start = time.perf_counter()
        try:
            response = method(request)
        except ServingError as err:
            if api:
                repository.metrics.request(request.model_spec.name, err.code, api, "GRPC", 0)
            context.abort(getattr(grpc.StatusCode, err.code), err.message)
        if api:
            repository.metrics.request(request.model_spec.name, "OK", api, "GRPC", (time.perf_counter() - start) * 1e6)
        return response

    class Prediction(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request, context):
            return call(repository.predict, request, context, "Predict")

        def Classify(self, request, context):
            return call(repository.classify, request, context, "Classify")

        def Regress(self, request, context):
            return call(repository.regress, request, context, "Regress")

        def MultiInference(self, request, context):
            return call(repository.multi_inference, request, context)

        def GetModelMetadata(self, request, context):
            return call(repository.metadata, request, context)

    class Models(model_service_pb2_grpc.ModelServiceServicer):
        def GetModelStatus(self, request, context):
            def status(req):
                if not req.HasField("model_spec"):
                    raise invalid_argument("Missing ModelSpec")
                return repository.status(req.model_spec)

            return call(status, request, context)

    def register(server: grpc.Server) -> None:
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Prediction(), server)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(Models(), server)

    return register
