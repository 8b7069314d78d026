"""The data lake: rules on the bus -> Firehose -> S3, typed by Glue, queried with Athena.

Two routes (chalicelib/lake_routes.py), each a rule and a Firehose stream: Magpie's own
events under the bucket's root, X's raw items (TWITTER_*) under `x-raw/`, so no key a
sender chooses lands where a typed table reads. Firehose appends a newline to each record
itself (its AppendDelimiterToRecord processor, no Lambda), compresses with GZIP and writes
under date prefixes, `year=YYYY/month=MM/day=DD/`, the layout the local lake uses too. The
Glue table's columns are generated from the MESSAGE_ANALYSED model (glue_schema.py) and its
partitions are projected, so there is nothing to crawl or repair. The other tables the
shared queries use (queries/glue/*.json, e.g. `magpie_events`) are created as declared
there, over the root or the `prefix` a table names. Every `queries/athena/*.sql` (and
`queries/*.sql`) becomes an Athena named query in the `magpie` workgroup, named after its
file, described by its first comment line.
"""

from __future__ import annotations

import re
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_athena as athena
from aws_cdk import aws_events as events
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from chalicelib.lake_routes import MAGPIE_EVENTS_PATTERN, RAW_X_PATTERN, RAW_X_PREFIX
from magpie_stack.bus import ArnTarget
from magpie_stack.glue_schema import (
    PARTITION_KEYS,
    detail_hint,
    envelope_columns,
    load_table_files,
)

DATABASE_NAME = "magpie"
TABLE_NAME = "analysed-messages-table"
WORKGROUP_NAME = "magpie"
DATE_PREFIX = "year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/"
# Failed records go under errors/ (expired after 30 days), then the route's own prefix.
ERROR_FOLDER = "errors/"
ERROR_PREFIX = "!{firehose:error-output-type}/" + DATE_PREFIX
JSON_SERDE = "org.openx.data.jsonserde.JsonSerDe"
FIRST_YEAR = 2024


def secure_bucket(scope: Construct, construct_id: str, **kwargs: object) -> s3.Bucket:
    """Encrypted, private, TLS-only; versioning off (the data is append-only or expiring)."""
    return s3.Bucket(
        scope,
        construct_id,
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        **kwargs,
    )


def named_queries(folder: Path) -> list[tuple[str, str, str]]:
    """(name, description, sql) for each .sql file in `folder`/athena and `folder` itself.

    Missing folders give none; empty files are skipped. The description is the first
    `--` comment line, or the name."""
    paths = []
    for where in (folder / "athena", folder):
        if where.is_dir():
            paths.extend(sorted(where.glob("*.sql")))
    found = []
    for path in paths:
        sql = path.read_text(encoding="utf-8").strip()
        if not sql:
            continue
        first = sql.splitlines()[0]
        description = first.removeprefix("--").strip() if first.startswith("--") else ""
        found.append((path.stem, description[:1024] or path.stem, sql))
    return found


class DataLake(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bus: events.IEventBus,
        detail_model: type,
        queries_dir: Path,
        access_logs: s3.IBucket,
        dead_letters: sqs.IQueue,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)

        self.bucket = secure_bucket(
            self,
            "Bucket",
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="lake/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="firehose-errors", prefix=ERROR_FOLDER, expiration=cdk.Duration.days(30)
                ),
                s3.LifecycleRule(
                    id="abort-incomplete-uploads",
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(1),
                ),
            ],
        )
        self.results = secure_bucket(
            self,
            "AthenaResults",
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="athena-results/",
            lifecycle_rules=[s3.LifecycleRule(id="results", expiration=cdk.Duration.days(30))],
        )

        # --- Firehose: one stream and one rule per route (chalicelib/lake_routes.py) -----
        self.firehose_logs = logs.LogGroup(self, "FirehoseLogs", retention=log_retention)
        role = iam.Role(
            self, "FirehoseRole", assumed_by=iam.ServicePrincipal("firehose.amazonaws.com")
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "s3:AbortMultipartUpload",
                    "s3:GetBucketLocation",
                    "s3:GetObject",
                    "s3:ListBucket",
                    "s3:ListBucketMultipartUploads",
                    "s3:PutObject",
                ],
                resources=[self.bucket.bucket_arn, self.bucket.arn_for_objects("*")],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:PutLogEvents"],
                resources=[self.firehose_logs.log_group_arn],
            )
        )
        put_role = iam.Role(
            self, "RuleToFirehoseRole", assumed_by=iam.ServicePrincipal("events.amazonaws.com")
        )
        # Magpie's own events keep the construct ids of the single stream this replaced, so
        # a deployed stack updates the stream and rule in place rather than replacing them.
        self.delivery_stream, self.rule = self._route(
            ("DeliveryStream", "FirehoseDeliveryLogs", "S3Delivery", "ToLake"),
            "",
            "Every Magpie event on the bus, once, into the data lake",
            MAGPIE_EVENTS_PATTERN,
            role=role,
            put_role=put_role,
            bus=bus,
            dead_letters=dead_letters,
        )
        self.raw_x_stream, self.raw_x_rule = self._route(
            ("RawXDeliveryStream", "RawXDeliveryLogs", "S3DeliveryRawX", "RawXToLake"),
            RAW_X_PREFIX,
            "Every raw X item (TWITTER_*) on the bus, once, into the lake's x-raw/ prefix",
            RAW_X_PATTERN,
            role=role,
            put_role=put_role,
            bus=bus,
            dead_letters=dead_letters,
        )

        # --- Glue and Athena --------------------------------------------------------------
        self.database = glue.CfnDatabase(
            self,
            "Database",
            catalog_id=stack.account,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=DATABASE_NAME, description="Magpie's data lake"
            ),
        )
        table_files = load_table_files(queries_dir / "glue")
        self.columns = envelope_columns(detail_model, detail_hint(table_files, TABLE_NAME))
        self.lake_root = f"s3://{self.bucket.bucket_name}/"
        self.table = self._table(
            "AnalysedMessages",
            TABLE_NAME,
            "Every Magpie event in the lake (X's raw items are in x_raw_events), typed as the "
            'MESSAGE_ANALYSED envelope (filter on "detail-type"); columns generated from '
            "chalicelib/events.py",
            self.columns,
        )
        self.tables = {TABLE_NAME: self.table}
        for name, spec in table_files.items():
            if name == TABLE_NAME:
                continue  # generated from the model above
            self.tables[name] = self._table(
                "Table" + re.sub(r"[^A-Za-z0-9]", "", name.title()),
                name,
                spec.get("description", name)[:2048],
                [(c["name"], c["type"]) for c in spec["columns"]],
                prefix=spec.get("prefix", ""),
            )

        self.workgroup = athena.CfnWorkGroup(
            self,
            "WorkGroup",
            name=WORKGROUP_NAME,
            description="Magpie's data lake queries",
            recursive_delete_option=True,
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=f"s3://{self.results.bucket_name}/",
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_S3"
                    ),
                ),
            ),
        )
        self.queries: list[athena.CfnNamedQuery] = []
        for name, description, sql in named_queries(queries_dir):
            query = athena.CfnNamedQuery(
                self,
                "Query" + re.sub(r"[^A-Za-z0-9]", "", name.title()),
                name=name,
                description=description,
                database=DATABASE_NAME,
                query_string=sql,
                work_group=self.workgroup.ref,
            )
            query.add_resource_dependency(self.database)
            self.queries.append(query)

    def _route(
        self,
        ids: tuple[str, str, str, str],
        prefix: str,
        description: str,
        pattern: dict[str, object],
        *,
        role: iam.Role,
        put_role: iam.Role,
        bus: events.IEventBus,
        dead_letters: sqs.IQueue,
    ) -> tuple[firehose.CfnDeliveryStream, events.Rule]:
        """A Firehose stream writing under `prefix` + the date folders, and the rule that
        sends it the events `pattern` matches (never a replayed copy: the lake has it)."""
        stream_id, log_stream_id, log_stream_name, rule_id = ids
        stack = cdk.Stack.of(self)
        log_stream = logs.LogStream(
            self, log_stream_id, log_group=self.firehose_logs, log_stream_name=log_stream_name
        )
        stream = firehose.CfnDeliveryStream(
            self,
            stream_id,
            delivery_stream_type="DirectPut",
            delivery_stream_encryption_configuration_input=(
                firehose.CfnDeliveryStream.DeliveryStreamEncryptionConfigurationInputProperty(
                    key_type="AWS_OWNED_CMK"
                )
            ),
            extended_s3_destination_configuration=(
                firehose.CfnDeliveryStream.ExtendedS3DestinationConfigurationProperty(
                    bucket_arn=self.bucket.bucket_arn,
                    role_arn=role.role_arn,
                    prefix=prefix + DATE_PREFIX,
                    error_output_prefix=ERROR_FOLDER + prefix + ERROR_PREFIX,
                    compression_format="GZIP",
                    buffering_hints=firehose.CfnDeliveryStream.BufferingHintsProperty(
                        interval_in_seconds=60, size_in_m_bs=5
                    ),
                    processing_configuration=(
                        firehose.CfnDeliveryStream.ProcessingConfigurationProperty(
                            enabled=True,
                            processors=[
                                firehose.CfnDeliveryStream.ProcessorProperty(
                                    type="AppendDelimiterToRecord"
                                )
                            ],
                        )
                    ),
                    cloud_watch_logging_options=(
                        firehose.CfnDeliveryStream.CloudWatchLoggingOptionsProperty(
                            enabled=True,
                            log_group_name=self.firehose_logs.log_group_name,
                            log_stream_name=log_stream.log_stream_name,
                        )
                    ),
                )
            ),
        )
        # The role's policy must exist before Firehose first tries to write.
        stream.add_resource_dependency(role.node.find_child("DefaultPolicy").node.default_child)
        put_role.add_to_policy(
            iam.PolicyStatement(
                actions=["firehose:PutRecord", "firehose:PutRecordBatch"],
                resources=[stream.attr_arn],
            )
        )
        rule = events.Rule(
            self,
            rule_id,
            event_bus=bus,
            description=description,
            event_pattern=events.EventPattern(account=[stack.account]),
            targets=[ArnTarget(stream.attr_arn, role=put_role, dead_letter_queue=dead_letters)],
        )
        # Overrides, not EventPattern fields: the L2 pattern has no `replay-name`, and the
        # route's pattern is kept in EventBridge's own JSON, as the local bus matches it.
        cfn_rule = rule.node.default_child
        for field, value in {**pattern, "replay-name": [{"exists": False}]}.items():
            cfn_rule.add_property_override(f"EventPattern.{field}", value)  # type: ignore[union-attr]
        return stream, rule

    def _table(
        self,
        construct_id: str,
        name: str,
        description: str,
        columns: list[tuple[str, str]],
        *,
        prefix: str = "",
    ) -> glue.CfnTable:
        """An external JSON table over the date folders under the lake's `prefix` ("" the
        root, Magpie's events; "x-raw/" X's raw items), partitions projected."""
        location = self.lake_root + prefix
        stack = cdk.Stack.of(self)
        table = glue.CfnTable(
            self,
            construct_id,
            catalog_id=stack.account,
            database_name=DATABASE_NAME,
            table_input=glue.CfnTable.TableInputProperty(
                name=name,
                description=description,
                table_type="EXTERNAL_TABLE",
                parameters={
                    "classification": "json",
                    "compressionType": "gzip",
                    "projection.enabled": "true",
                    "projection.year.type": "integer",
                    "projection.year.range": f"{FIRST_YEAR},2100",
                    "projection.month.type": "integer",
                    "projection.month.range": "1,12",
                    "projection.month.digits": "2",
                    "projection.day.type": "integer",
                    "projection.day.range": "1,31",
                    "projection.day.digits": "2",
                    "storage.location.template": location
                    + "year=${year}/month=${month}/day=${day}/",
                },
                partition_keys=[
                    glue.CfnTable.ColumnProperty(name=n, type=t) for n, t in PARTITION_KEYS
                ],
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    location=location,
                    input_format="org.apache.hadoop.mapred.TextInputFormat",
                    output_format="org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
                    serde_info=glue.CfnTable.SerdeInfoProperty(
                        serialization_library=JSON_SERDE,
                        parameters={"ignore.malformed.json": "true"},
                    ),
                    columns=[glue.CfnTable.ColumnProperty(name=n, type=t) for n, t in columns],
                ),
            ),
        )
        table.add_resource_dependency(self.database)
        return table
