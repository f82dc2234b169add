{{/*
Rules across values that values.schema.json cannot state (or not with a clear message). Each
failure names the values to change. Rendered through validations.yaml, which outputs nothing.
*/}}
{{- define "parallels-agent.validations" -}}
{{- $problems := list }}

{{- if not .Values.controlPlane.url }}
{{- $problems = append $problems "controlPlane.url is required: the control plane's URL, as POST /v1/clusters printed it (e.g. --set-string controlPlane.url=https://parallels.example.com)" }}
{{- end }}

{{- if not .Values.mlflow.trackingUri }}
{{- $problems = append $problems "mlflow.trackingUri is required: the MLflow tracking server the steps log to (e.g. --set-string mlflow.trackingUri=https://mlflow.example.com)" }}
{{- end }}

{{- $token := .Values.bootstrap.token | trim }}
{{- if and $token .Values.bootstrap.existingSecret }}
{{- $problems = append $problems "set either bootstrap.token or bootstrap.existingSecret, not both" }}
{{- else if not (or $token .Values.bootstrap.existingSecret) }}
{{- $problems = append $problems "a bootstrap token is required: --set-file bootstrap.token=<file holding the token of POST /v1/clusters>, or bootstrap.existingSecret=<Secret name> (with bootstrap.existingSecretKey)" }}
{{- end }}

{{- $ca := list }}
{{- range $k := list "pem" "existingConfigMap" "existingSecret" }}
{{- if index $.Values.caBundle $k }}{{ $ca = append $ca (printf "caBundle.%s" $k) }}{{ end }}
{{- end }}
{{- if gt (len $ca) 1 }}
{{- $problems = append $problems (printf "set at most one of caBundle.pem, caBundle.existingConfigMap and caBundle.existingSecret (got %s)" (join ", " $ca)) }}
{{- end }}
{{- if and .Values.caBundle.pem (not (contains "-----BEGIN CERTIFICATE-----" .Values.caBundle.pem)) }}
{{- $problems = append $problems "caBundle.pem must hold PEM certificates (-----BEGIN CERTIFICATE-----)" }}
{{- end }}

{{- if and .Values.proxy.existingSecret (or .Values.proxy.httpsProxy .Values.proxy.httpProxy) }}
{{- $problems = append $problems "set either proxy.existingSecret (the URLs in a Secret) or proxy.httpsProxy/proxy.httpProxy, not both" }}
{{- end }}

{{- $steps := .Values.mlflow.stepsCredentialsSecret }}
{{- if $steps }}
{{- if eq $steps .Values.mlflow.agentCredentialsSecret }}
{{- $problems = append $problems "mlflow.stepsCredentialsSecret must not be the agent's own Secret (mlflow.agentCredentialsSecret): give the steps a Secret of their own" }}
{{- end }}
{{- if has $steps (list (include "parallels-agent.credentialsSecretName" .) (include "parallels-agent.bootstrapSecretName" .)) }}
{{- $problems = append $problems (printf "mlflow.stepsCredentialsSecret must not be the agent's credentials or bootstrap Secret (%s)" $steps) }}
{{- end }}
{{- end }}

{{- if $problems }}
{{- fail (printf "\n\nparallels-agent: %d problem(s) with the values:\n  - %s\n" (len $problems) (join "\n  - " $problems)) }}
{{- end }}
{{- end }}
