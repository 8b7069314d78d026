"""The analysis workflow: the Step Functions state machine calling the core app's steps.

    DownloadMedia -> Analyse (parallel: AnalyseText | Map over the media: AnalyseImage)
                  -> PublishAnalysis
    any of those failing for good -> PublishAnalysisFailed -> AnalysisFailed (Fail)
    any other ending (timed out, aborted, an uncatchable error) -> the log group's
    subscription filter -> the core app's analysis_stopped

The same shape as the local orchestrator (chalicelib/analysis/orchestrator.py): an
image whose analysis fails is recorded in its `Errors` and the message is still analysed;
anything else that fails publishes MESSAGE_ANALYSIS_FAILED with {Message, Error}. Every
task has a timeout and retriers priced by budget.py so that, however often they retry,
the execution reaches one of its Publish steps before the execution limit.

Express, not Standard: a message's analysis takes seconds, Express costs a fraction of
Standard per execution and EventBridge starts it asynchronously. Its at-least-once start is
harmless here: the steps are idempotent (keys derive from the message id) and the
responders and egress deduplicate on the message id.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from chalicelib.analysis.endings import REPORTED_BY_WORKFLOW
from magpie_stack.budget import (
    EXECUTION_TIMEOUT_SECONDS,
    FAILED_RETRY,
    IMAGE_CONCURRENCY,
    INVOKE_REFUSALS,
    REFUSED_RETRY,
    STEP_TIMEOUT_SECONDS,
)

EMPTY_IMAGE_ANALYSIS = {
    "Labels": [],
    "TextDetections": [],
    "CelebrityFaces": [],
    "UnrecognizedFaces": [],
    "ModerationLabels": [],
}
STATE_NAMES = {
    "download_media": "DownloadMedia",
    "analyse_text": "AnalyseText",
    "analyse_image": "AnalyseImage",
    "publish_analysis": "PublishAnalysis",
    "publish_analysis_failed": "PublishAnalysisFailed",
}
ANALYSIS_STEPS = tuple(STATE_NAMES)  # the core app's functions the state machine invokes


def _with_retries(task: tasks.LambdaInvoke) -> tasks.LambdaInvoke:
    """The retriers budget.py prices: refused invocations waited out with jitter, any
    other failure tried once more."""
    task.add_retry(
        errors=list(INVOKE_REFUSALS),
        interval=Duration.seconds(REFUSED_RETRY["interval"]),
        max_attempts=REFUSED_RETRY["max_attempts"],
        backoff_rate=REFUSED_RETRY["backoff_rate"],
        max_delay=Duration.seconds(REFUSED_RETRY["max_delay"]),
        jitter_strategy=sfn.JitterType.FULL,
    )
    task.add_retry(
        errors=["States.ALL"],
        interval=Duration.seconds(FAILED_RETRY["interval"]),
        max_attempts=FAILED_RETRY["max_attempts"],
        backoff_rate=FAILED_RETRY["backoff_rate"],
    )
    return task


def _invoke(
    scope: Construct, name: str, function: lambda_.IFunction, **kwargs: object
) -> tasks.LambdaInvoke:
    return _with_retries(
        tasks.LambdaInvoke(
            scope,
            STATE_NAMES[name],
            lambda_function=function,
            payload_response_only=True,
            retry_on_service_exceptions=False,  # replaced by _with_retries, with jitter
            task_timeout=sfn.Timeout.duration(Duration.seconds(STEP_TIMEOUT_SECONDS[name])),
            **kwargs,
        )
    )


def definition(scope: Construct, functions: dict[str, lambda_.IFunction]) -> sfn.IChainable:
    """The workflow over the core app's step functions (keyed by their Chalice names)."""
    failed = _invoke(
        scope,
        "publish_analysis_failed",
        functions["publish_analysis_failed"],
        payload=sfn.TaskInput.from_object(
            {
                "Message": sfn.JsonPath.object_at("$.detail"),
                "Error": sfn.JsonPath.object_at("$.Failure"),
            }
        ),
        result_path="$.Published",
    ).next(
        sfn.Fail(
            scope,
            "AnalysisFailed",
            error=REPORTED_BY_WORKFLOW,
            cause="MESSAGE_ANALYSIS_FAILED was published",
        )
    )

    download = _invoke(
        scope,
        "download_media",
        functions["download_media"],
        # The execution's ARN with the message: the step records which message this
        # execution analyses, for an ending only the log reports (chalicelib/analysis/endings.py).
        payload=sfn.TaskInput.from_object(
            {
                "Message": sfn.JsonPath.object_at("$.detail"),
                "Execution": sfn.JsonPath.execution_id,
            }
        ),
        result_selector={"Media.$": "$.Media", "Rejected.$": "$.Rejected"},
        result_path="$.Downloaded",
    )

    text = _invoke(scope, "analyse_text", functions["analyse_text"], input_path="$.detail")

    image = _invoke(scope, "analyse_image", functions["analyse_image"])
    image_failed = sfn.Pass(
        scope,
        "ImageErrorEntry",
        parameters={
            "Capability": "image",
            "Image.$": "$.Key",
            # {Error, Cause} as Step Functions caught it; publish_analysis words it.
            "Error.$": "$.Failure",
        },
        result_path="$.ErrorEntry",
    ).next(
        sfn.Pass(
            scope,
            "ImageFailed",
            parameters={
                "Key.$": "$.Key",
                "Url.$": "$.Url",
                "Analysis": EMPTY_IMAGE_ANALYSIS,
                "Errors.$": "States.Array($.ErrorEntry)",
            },
        )
    )
    image.add_catch(image_failed, errors=["States.ALL"], result_path="$.Failure")
    images = sfn.Map(
        scope,
        "AnalyseImages",
        items_path="$.Downloaded.Media",
        max_concurrency=IMAGE_CONCURRENCY,
    ).item_processor(image)

    analyse = sfn.Parallel(scope, "Analyse", result_path="$.Analysis").branch(text).branch(images)

    publish = _invoke(
        scope,
        "publish_analysis",
        functions["publish_analysis"],
        payload=sfn.TaskInput.from_object(
            {
                "Message": sfn.JsonPath.object_at("$.detail"),
                "Text": sfn.JsonPath.object_at("$.Analysis[0]"),
                "Images": sfn.JsonPath.list_at("$.Analysis[1]"),
                "Rejected": sfn.JsonPath.list_at("$.Downloaded.Rejected"),
                "Provider": "aws",
            }
        ),
    )

    for step in (download, analyse, publish):
        step.add_catch(failed, errors=["States.ALL"], result_path="$.Failure")
    return download.next(analyse).next(publish)


class AnalysisWorkflow(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: dict[str, lambda_.IFunction],
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name="/aws/vendedlogs/states/magpie-analysis",
            retention=log_retention,
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name="magpie-analysis",
            state_machine_type=sfn.StateMachineType.EXPRESS,
            definition_body=sfn.DefinitionBody.from_chainable(definition(self, functions)),
            timeout=Duration.seconds(EXECUTION_TIMEOUT_SECONDS),  # budget.py prices it
            # Failures only: their error events and, with execution data, the Fail state's
            # input (the message and the failure); a successful execution logs nothing. At
            # level ALL the logs were most of the workflow's cost per message.
            logs=sfn.LogOptions(
                destination=self.log_group, level=sfn.LogLevel.ERROR, include_execution_data=True
            ),
        )
