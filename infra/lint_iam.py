"""Every IAM statement both templates deploy, checked by parliament.

Each template is translated by SAM's own translator (what `sam deploy` runs),
its intrinsic functions resolved to the ARNs CloudFormation would give, and
every policy document in it (role policies, bucket, topic, queue and key
policies) handed to parliament (https://github.com/duo-labs/parliament), which
checks each statement's actions and resources against AWS's published
action/resource table. A `RESOURCE_MISMATCH` (a grant on an ARN the action is
never authorised against) or `UNKNOWN_ACTION` fails the lint.

    python infra/lint_iam.py infra/template.yaml infra/pipeline/template.yaml
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# The emulator's reading of a template: SAM's translation and the resolver.
sys.path.insert(0, str(ROOT / "tests" / "emulator"))

from parliament import analyze_policy_string  # noqa: E402

from template_iam import translate_template  # noqa: E402

FAILING = {"RESOURCE_MISMATCH", "UNKNOWN_ACTION", "UNKNOWN_PREFIX", "MALFORMED"}

# Findings that are the design, each with why: (logical id, action).
ACCEPTED = {
    # The connection's ARN is codeconnections (since 2024) or the older
    # codestar-connections; the role grants UseConnection under both
    # prefixes on the one ARN the user passes, so one of the two never
    # matches its format whichever it is.
    ("PipelineRole", "codestar-connections:UseConnection"): "either connection ARN format",
    ("PipelineRole", "codeconnections:UseConnection"): "either connection ARN format",
}
ACCOUNT = "123456789012"
REGION = "us-east-1"

# Values for parameters without a default (the example pipeline's), shaped
# as AWS wants them.
PLACEHOLDERS = {
    "VpcId": "vpc-0example",
    "PublicSubnetIds": ["subnet-a", "subnet-b"],
    "PrivateSubnetIds": ["subnet-c", "subnet-d"],
    "CertificateArn": f"arn:aws:acm:{REGION}:{ACCOUNT}:certificate/example",
    "TestListenerHostName": "test.example.com",
    "NatGatewayCidrs": ["203.0.113.1/32"],
    "ConnectionArn": f"arn:aws:codeconnections:{REGION}:{ACCOUNT}:connection/example",
    "ReleaseGateFunctionName": "shipgate-release-gate",
    "DeployHooksFunctionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:shipgate-deploy-hooks",
}


def attributes(logical_id: str, kind: str) -> dict[str, str]:
    """What `Ref` and `GetAtt` give for a resource, as CloudFormation names it."""
    name = logical_id.lower()
    region_account = f"{REGION}:{ACCOUNT}"
    arns = {
        "AWS::S3::Bucket": f"arn:aws:s3:::{name}",
        "AWS::SNS::Topic": f"arn:aws:sns:{region_account}:{name}",
        "AWS::SQS::Queue": f"arn:aws:sqs:{region_account}:{name}",
        "AWS::KMS::Key": f"arn:aws:kms:{region_account}:key/{name}",
        "AWS::Events::EventBus": f"arn:aws:events:{region_account}:event-bus/{name}",
        "AWS::Lambda::Function": f"arn:aws:lambda:{region_account}:function:{name}",
        "AWS::IAM::Role": f"arn:aws:iam::{ACCOUNT}:role/{name}",
        "AWS::ECR::Repository": f"arn:aws:ecr:{region_account}:repository/{name}",
        "AWS::ECS::Cluster": f"arn:aws:ecs:{region_account}:cluster/{name}",
        "AWS::ECS::Service": f"arn:aws:ecs:{region_account}:service/cluster/{name}",
        "AWS::ECS::TaskDefinition": f"arn:aws:ecs:{region_account}:task-definition/{name}:1",
        "AWS::CodeBuild::Project": f"arn:aws:codebuild:{region_account}:project/{name}",
        "AWS::Logs::LogGroup": f"arn:aws:logs:{region_account}:log-group:{name}:*",
        "AWS::SecretsManager::Secret": f"arn:aws:secretsmanager:{region_account}:secret:{name}-AbCdEf",
        "AWS::CodePipeline::Pipeline": f"arn:aws:codepipeline:{region_account}:{name}",
        "AWS::Scheduler::Schedule": f"arn:aws:scheduler:{region_account}:schedule/default/{name}",
        "AWS::ElasticLoadBalancingV2::LoadBalancer": (
            f"arn:aws:elasticloadbalancing:{region_account}:loadbalancer/app/{name}/0123456789abcdef"
        ),
    }
    arn = arns.get(kind, f"arn:aws:cloudformation:{region_account}:stack/example/{name}")
    # Ref gives the ARN for topics, services, task definitions, secrets,
    # load balancers; the name (or id, or URL) for the rest.
    by_arn = {
        "AWS::SNS::Topic", "AWS::ECS::Service", "AWS::ECS::TaskDefinition", "AWS::SecretsManager::Secret",
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
    }
    ref = arn if kind in by_arn else name
    if kind == "AWS::SQS::Queue":
        ref = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"
    return {
        "Ref": ref,
        "Arn": arn,
        "Name": name,
        "TopicName": name,
        "QueueName": name,
        "KeyId": name,
        "RepositoryUri": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{name}",
        "LoadBalancerFullName": f"app/{name}/0123456789abcdef",
        "DNSName": f"{name}.{REGION}.elb.amazonaws.com",
    }


# Where each resource type keeps its policy documents.
POLICY_PATHS = {
    "AWS::IAM::Role": lambda p: [x["PolicyDocument"] for x in p.get("Policies", [])],
    "AWS::IAM::Policy": lambda p: [p["PolicyDocument"]],
    "AWS::IAM::ManagedPolicy": lambda p: [p["PolicyDocument"]],
    "AWS::S3::BucketPolicy": lambda p: [p["PolicyDocument"]],
    "AWS::SNS::TopicPolicy": lambda p: [p["PolicyDocument"]],
    "AWS::SQS::QueuePolicy": lambda p: [p["PolicyDocument"]],
    "AWS::KMS::Key": lambda p: [p["KeyPolicy"]] if "KeyPolicy" in p else [],
}


def documents(template: Path) -> list[tuple[str, dict[str, Any]]]:
    """(`LogicalId`, policy document) for every policy the template deploys."""
    translated, resolve = translate_template(
        template, parameters=PLACEHOLDERS, account=ACCOUNT, region=REGION, attributes=attributes
    )
    out = []
    for logical_id, resource in translated["Resources"].items():
        extract = POLICY_PATHS.get(resource.get("Type", ""))
        if extract is None:
            continue
        for document in extract(resource.get("Properties", {})):
            out.append((logical_id, resolve(document)))
    return out


def main(paths: list[str]) -> int:
    failures = 0
    statements = 0
    for path in paths:
        for logical_id, document in documents(Path(path)):
            statements += len(document.get("Statement", []))
            policy = analyze_policy_string(json.dumps(document), include_community_auditors=False)
            for finding in policy.findings:
                if finding.issue not in FAILING:
                    continue
                actions = {d.get("action") for d in finding.detail} if isinstance(finding.detail, list) else set()
                if actions and all((logical_id, a) in ACCEPTED for a in actions):
                    continue
                failures += 1
                print(f"{path}: {logical_id}: {finding.issue}: {json.dumps(finding.detail)}")
    print(f"parliament: {statements} statements in {len(paths)} templates, {failures} findings of "
          f"{', '.join(sorted(FAILING))}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
