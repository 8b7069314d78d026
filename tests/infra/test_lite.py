"""The `lite` profile (`cdk synth --context magpie:profile=lite`, conftest.py's `lite_synth`),
and what it must not change in the `full` one.

lite: analyse_text and analyse_image are container-image functions running the local models,
text_responder matches intents itself, no Lex bot, no Comprehend or Rekognition permission,
and the known-faces gallery in a bucket of its own. What both profiles share (cdk-nag,
cfn-lint, least privilege, roles, environment) is checked in test_template.py.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.infra.test_template import functions, grants, output_ref, ref, role_statements

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "infra") not in sys.path:
    sys.path.append(str(ROOT / "infra"))  # appended: infra/app.py must never shadow `app`
REQUIREMENT_FILES = ("requirements.txt", "requirements-local.txt", "requirements-e5.txt")
AI_ACTION = re.compile(r"^(comprehend|rekognition|lex|lexv2):", re.IGNORECASE)
ZIP_ONLY = ("CodeUri", "Handler", "Runtime", "Layers")


def lite_functions() -> dict[str, dict[str, Any]]:
    from magpie_stack.lite import LITE_FUNCTIONS

    return LITE_FUNCTIONS


def sam_functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Chalice function name -> its SAM properties, before the transform."""
    found = {}
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        properties = resource["Properties"]
        if properties.get("PackageType") == "Image":
            handler = properties["ImageConfig"]["Command"][0]
        else:
            handler = properties["Handler"]
        found["api_handler" if handler == "app.app" else handler.split(".", 1)[1]] = properties
    return found


def docker_images(synth) -> dict[str, dict[str, Any]]:
    return json.loads((synth.outdir / "MagpieStack.assets.json").read_text()).get(
        "dockerImages", {}
    )


def policy_actions(template: dict[str, Any]) -> set[str]:
    """Every action any IAM policy or role of the (expanded) template allows."""
    found: set[str] = set()
    for role_id, resource in template["Resources"].items():
        if resource["Type"] == "AWS::IAM::Role":
            for statement in role_statements(template, role_id):
                actions = statement.get("Action", [])
                found.update(actions if isinstance(actions, list) else [actions])
    return found


def staged_context(lite_synth) -> Path:
    ((_, image),) = docker_images(lite_synth).items()
    return lite_synth.outdir / image["source"]["directory"]


# --- the image functions -------------------------------------------------------------------


def test_lite_synth_reports_its_time(lite_synth):
    assert lite_synth.profile == "lite"
    print(f"\ncdk synth --strict --context magpie:profile=lite took {lite_synth.seconds:.1f}s")


def test_the_analysis_functions_are_container_images_sized_from_lite_functions(lite_synth):
    found = sam_functions(lite_synth.template)
    ((tag, image),) = docker_images(lite_synth).items()
    assert image["source"]["platform"] == "linux/amd64"
    image_uris = set()
    for name, spec in lite_functions().items():
        properties = found[name]
        assert properties["PackageType"] == "Image", name
        assert properties["ImageConfig"] == {"Command": [f"app.{name}"]}, name
        assert properties["ImageConfig"]["Command"] == spec["command"], name
        for key in ZIP_ONLY:
            assert key not in properties, (name, key)
        assert properties["MemorySize"] == spec["memory_mb"], name
        assert properties["Timeout"] == spec["timeout_seconds"], name
        assert properties["Architectures"] == ["x86_64"] == [spec["architecture"]], name
        uri = properties["ImageUri"]["Fn::Sub"]
        assert re.fullmatch(
            r"\$\{AWS::AccountId\}\.dkr\.ecr\.\$\{AWS::Region\}\.\$\{AWS::URLSuffix\}/"
            r"cdk-\w+-container-assets-\$\{AWS::AccountId\}-\$\{AWS::Region\}:" + tag,
            uri,
        ), uri
        image_uris.add(uri)
    assert len(image_uris) == 1  # one image, two commands
    assert lite_functions()["analyse_text"]["memory_mb"] == 1024
    assert lite_functions()["analyse_image"]["memory_mb"] == 2048

    # ...and what CloudFormation gets once SAM has transformed them.
    deployed = functions(lite_synth.expanded)
    for name in lite_functions():
        properties = deployed[name][1]["Properties"]
        assert properties["PackageType"] == "Image", name
        assert set(properties["Code"]) == {"ImageUri"}, name
        assert "Runtime" not in properties and "Handler" not in properties, name


def test_every_other_function_stays_a_chalice_zip(lite_synth):
    for name, properties in sam_functions(lite_synth.template).items():
        if name in lite_functions():
            continue
        assert properties.get("PackageType", "Zip") == "Zip", name
        assert properties["Runtime"] == "python3.11", name
        assert "Bucket" in properties["CodeUri"], name


def test_the_full_profile_keeps_its_zip_functions_and_ai_services(synth):
    found = sam_functions(synth.template)
    for name in lite_functions():
        assert "PackageType" not in found[name], name
        assert found[name]["Handler"] == f"app.{name}", name
        assert "CodeUri" in found[name] and "ImageUri" not in found[name], name
    assert docker_images(synth) == {}
    assert "FacesBucketName" not in synth.template["Outputs"]
    assert {"LexBotId", "LexBotAliasId", "LexLocaleId"} <= set(synth.template["Outputs"])
    assert "RekognitionCollectionId" in synth.template["Parameters"]
    lex = {r["Type"] for r in synth.resources.values() if r["Type"].startswith("AWS::Lex::")}
    assert lex == {"AWS::Lex::Bot", "AWS::Lex::BotVersion", "AWS::Lex::BotAlias"}
    template = synth.expanded
    deployed = functions(template)
    text_role = ref(deployed["analyse_text"][1]["Properties"]["Role"])
    image_role = ref(deployed["analyse_image"][1]["Properties"]["Role"])
    assert any(
        a.startswith("comprehend:")
        for s in role_statements(template, text_role)
        for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    )
    assert any(
        a.startswith("rekognition:")
        for s in role_statements(template, image_role)
        for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    )
    environment = deployed["text_responder"][1]["Properties"]["Environment"]["Variables"]
    # The provider is the stack's parameter (Lex unless a deploy says otherwise).
    assert environment["CONVERSATION_PROVIDER"] == {"Ref": "ConversationProvider"}
    assert "LEX_BOT_ID" in environment


# --- no AI service, no Lex -----------------------------------------------------------------


def test_lite_has_no_lex_and_no_ai_service_permission(lite_synth):
    template = lite_synth.expanded
    kinds = {r["Type"] for r in template["Resources"].values()}
    assert not [k for k in kinds if k.startswith("AWS::Lex::")]
    roles = [r for r in template["Resources"].values() if r["Type"] == "AWS::IAM::Role"]
    principals = json.dumps([r["Properties"]["AssumeRolePolicyDocument"] for r in roles])
    assert "lex" not in principals.lower()
    permissions = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Permission"
    ]
    assert not [p for p in permissions if "lex" in json.dumps(p["Principal"]).lower()]
    # lex_fulfilment is still deployed with the core app; nothing may invoke it.
    fulfilment, _ = functions(template)["lex_fulfilment"]
    assert not [p for p in permissions if ref(p["FunctionName"]) == fulfilment]
    assert not [a for a in policy_actions(template) if AI_ACTION.match(a)]
    assert "RekognitionCollectionId" not in lite_synth.template["Parameters"]
    assert not {"LexBotId", "LexBotAliasId", "LexLocaleId"} & set(lite_synth.template["Outputs"])


# --- the faces bucket ----------------------------------------------------------------------


def test_the_faces_bucket_is_versioned_kept_and_read_only_by_analyse_image(lite_synth):
    template = lite_synth.expanded
    faces = output_ref(lite_synth.template, "FacesBucketName")
    bucket = template["Resources"][faces]
    assert bucket["Type"] == "AWS::S3::Bucket"
    assert bucket["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}
    assert "LifecycleConfiguration" not in bucket["Properties"]  # the gallery never expires
    assert bucket["DeletionPolicy"] == "Retain"
    assert bucket["Properties"]["LoggingConfiguration"]["LogFilePrefix"] == "faces/"

    deployed = functions(template)
    environment = deployed["analyse_image"][1]["Properties"]["Environment"]["Variables"]
    assert environment["FACE_GALLERY_BUCKET"] == {"Ref": faces}

    gallery = {"Fn::Join": ["", [{"Fn::GetAtt": [faces, "Arn"]}, "/known-faces/gallery.json"]]}
    readers = {}
    for name, (_, function) in deployed.items():
        role = ref(function["Properties"]["Role"])
        for statement in role_statements(template, role):
            resources = statement["Resource"]
            resources = resources if isinstance(resources, list) else [resources]
            on_faces = [r for r in resources if faces in json.dumps(r)]
            if on_faces:
                readers.setdefault(name, []).append((statement["Action"], on_faces))
    # ListBucket, so that a gallery nobody has written yet is a 404 ("nobody enrolled"), not
    # a 403 that fails every face step until someone enrols.
    bucket_arn = {"Fn::GetAtt": [faces, "Arn"]}
    assert readers == {
        "analyse_image": [("s3:GetObject", [gallery]), ("s3:ListBucket", [bucket_arn])]
    }
    media = output_ref(lite_synth.template, "MediaBucketName")
    image_role = ref(deployed["analyse_image"][1]["Properties"]["Role"])
    assert grants(template, image_role, "s3:GetObject", media)


# --- the Docker build context --------------------------------------------------------------


def test_the_docker_context_is_staged_with_the_core_app_and_its_requirements(lite_synth):
    context = staged_context(lite_synth)
    assert context.is_dir()
    assert (context / "Dockerfile").read_bytes() == (ROOT / "infra/lite/Dockerfile").read_bytes()
    assert (context / "app.py").read_bytes() == (ROOT / "app.py").read_bytes()
    for name in REQUIREMENT_FILES:
        assert (context / name).read_bytes() == (ROOT / name).read_bytes(), name
    # Chalice's runtime, as `chalice package` bundles it (app.py imports chalice).
    assert (context / "chalice" / "__init__.py").is_file()
    assert (context / "chalice" / "app.py").is_file()
    chalicelib = context / "chalicelib"
    assert chalicelib.is_dir() and not chalicelib.is_symlink()
    tracked = subprocess.run(
        ["git", "ls-files", "chalicelib"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    staged = {str(p.relative_to(context)) for p in chalicelib.rglob("*") if p.is_file()}
    assert tracked and set(tracked) <= staged
    everything = list(context.rglob("*"))
    assert not [p for p in everything if p.name == "__pycache__" or p.suffix == ".pyc"]
    assert not [p for p in everything if p.is_symlink()]


def _instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    lines = [line for line in dockerfile.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    found = []
    for line in joined.splitlines():
        if line.strip():
            instruction, _, arguments = line.strip().partition(" ")
            found.append((instruction.upper(), arguments.strip()))
    return found


def test_the_dockerfile_installs_the_requirement_files_it_is_given(lite_synth):
    context = staged_context(lite_synth)
    dockerfile = (context / "Dockerfile").read_text()
    header = dockerfile.split("FROM", 1)[0]
    assert "cdk deploy" in header and "magpie:profile=lite" in header
    instructions = _instructions(dockerfile)
    assert instructions[0][0] == "FROM"
    assert instructions[0][1].startswith("public.ecr.aws/lambda/python:")
    kinds = [kind for kind, _ in instructions]
    assert "CMD" not in kinds and "ENTRYPOINT" not in kinds  # ImageConfig.Command decides

    copied: dict[str, str] = {}  # file or folder in the context -> where it goes
    for kind, arguments in instructions:
        if kind == "COPY":
            *sources, destination = shlex.split(arguments)
            for source in sources:
                assert (context / source).exists(), source
                copied[source.rstrip("/")] = destination
    for name in ("app.py", "chalicelib", "chalice"):
        assert copied[name].startswith("${LAMBDA_TASK_ROOT}"), name

    installs = [
        command.strip()
        for kind, arguments in instructions
        if kind == "RUN"
        for command in arguments.split("&&")
        if "pip install" in command
    ]
    referenced: dict[str, str] = {}
    for command in installs:
        assert "--no-cache-dir" in command, command
        for path in re.findall(r"-r\s+(\S+)", command):
            name = Path(path).name
            assert name in copied, f"{path} is installed but never copied in"
            referenced[name] = command
    assert set(referenced) == set(REQUIREMENT_FILES)
    e5 = referenced["requirements-e5.txt"]
    assert "--require-hashes" in e5 and "--no-deps" in e5
    assert "requirements.txt" not in e5 and "requirements-local.txt" not in e5
