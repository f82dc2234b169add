// The MLflow launcher serves the embedded default too; tests use it from here.
export * from "../../scripts/local/mlflow-server";
