"""Packaging: the contracts, models, components, serving, pipeline and ops packages and the CLI (tfxp)."""

from setuptools import find_packages, setup

setup(
    name="tfx-kfp-pipeline",
    version="0.1.0",
    description="An end-to-end TFX pipeline for local runs, Kubeflow Pipelines 2.x and TF Serving.",
    python_requires=">=3.10,<3.14",
    packages=find_packages(
        include=[
            "pipeline",
            "pipeline.*",
            "components",
            "components.*",
            "contracts",
            "contracts.*",
            "models",
            "models.*",
            "ops",
            "ops.*",
            "serving",
            "serving.*",
            "tfxp",
            "tfxp.*",
        ]
    ),
    package_data={"pipeline": ["configs/*.yaml"]},
    install_requires=["tfx>=1.21,<1.22", "kfp>=2.7,<3", "pydantic>=2,<3"],
    entry_points={"console_scripts": ["tfxp=tfxp.main:entry_point"]},
)
