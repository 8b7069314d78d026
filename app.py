"""Core: the analysis steps the state machine calls, the report of an analysis execution
that ended without one (from the state machine's log), the alerts and their fan-out, and Lex
fulfilment.

Each handler unwraps its event and calls one named function in chalicelib.
"""

from chalice import Chalice

from chalicelib.alert_sinks import forward_sns_message
from chalicelib.alerting import raise_alert_for_event
from chalicelib.alerts import ALERT_PATTERNS
from chalicelib.analysis import endings, steps
from chalicelib.responders.fulfilment import lex_fulfilment as fulfil

app = Chalice(app_name="magpie-core")

ALERT_TOPIC = "magpie-alerts"


@app.lambda_function(name="download_media")
def download_media(event, context):
    return steps.start_analysis(event)


@app.lambda_function(name="analyse_text")
def analyse_text(event, context):
    return steps.analyse_text(event)


@app.lambda_function(name="analyse_image")
def analyse_image(event, context):
    return steps.analyse_image(event)


@app.lambda_function(name="publish_analysis")
def publish_analysis(event, context):
    return steps.publish_analysis(event)


@app.lambda_function(name="publish_analysis_failed")
def publish_analysis_failed(event, context):
    return steps.publish_analysis_failed(event)


@app.lambda_function(name="analysis_stopped")
def analysis_stopped(event, context):
    return endings.analysis_stopped(event)


@app.lambda_function(name="lex_fulfilment")
def lex_fulfilment(event, context):
    return fulfil(event)


# One function per alert rule (a rule has one pattern); each raises its alert once per
# message onto the topic.
@app.on_cw_event(ALERT_PATTERNS["negative"], name="alert_negative")
def alert_negative(event):
    return raise_alert_for_event(event.to_dict(), context=event.context)


@app.on_cw_event(ALERT_PATTERNS["analysis_failed"], name="alert_analysis_failed")
def alert_analysis_failed(event):
    return raise_alert_for_event(event.to_dict(), context=event.context)


@app.on_cw_event(ALERT_PATTERNS["reply_failed"], name="alert_reply_failed")
def alert_reply_failed(event):
    return raise_alert_for_event(event.to_dict(), context=event.context)


@app.on_sns_message(topic=ALERT_TOPIC)
def forward_alert(event):
    forward_sns_message(event.message, event.subject)
