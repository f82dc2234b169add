{{/*
Names, labels and the few facts every template shares. One place for each name: the
Deployment's environment tells the agent the same names the RBAC objects grant.
*/}}

{{- define "parallels-agent.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "parallels-agent.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "parallels-agent.selectorLabels" -}}
app.kubernetes.io/name: {{ include "parallels-agent.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "parallels-agent.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "parallels-agent.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: mlflow-parallels
{{- end }}

{{/* The work's namespace: the steps' Jobs and pods, the work ServiceAccount, the work Role. */}}
{{- define "parallels-agent.workNamespace" -}}
{{- default .Release.Namespace .Values.work.namespace }}
{{- end }}

{{/* The agent's ServiceAccount (the only one with permissions). */}}
{{- define "parallels-agent.serviceAccountName" -}}
{{- include "parallels-agent.fullname" . }}
{{- end }}

{{/* The work pods' ServiceAccount: no permissions, no token. */}}
{{- define "parallels-agent.workServiceAccountName" -}}
{{- printf "%s-work" (include "parallels-agent.fullname" .) }}
{{- end }}

{{/* The Secret the agent keeps its credentials in (the chart creates it empty; the agent fills it). */}}
{{- define "parallels-agent.credentialsSecretName" -}}
{{- printf "%s-credentials" (include "parallels-agent.fullname" .) }}
{{- end }}

{{/* The Secret holding the bootstrap token, and its key. */}}
{{- define "parallels-agent.bootstrapSecretName" -}}
{{- default (printf "%s-bootstrap" (include "parallels-agent.fullname" .)) .Values.bootstrap.existingSecret }}
{{- end }}
{{- define "parallels-agent.bootstrapSecretKey" -}}
{{- if .Values.bootstrap.existingSecret }}{{ .Values.bootstrap.existingSecretKey }}{{ else }}token{{ end }}
{{- end }}

{{/* The agent's image reference; the work pods' init container and sidecar use the same. */}}
{{- define "parallels-agent.image" -}}
{{- $ref := printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- if .Values.image.digest }}{{ $ref = printf "%s@%s" $ref .Values.image.digest }}{{ end }}
{{- $ref }}
{{- end }}

{{/* The agent's /healthz and /metrics port (PARALLELS_HEALTH_PORT); it listens on the pod IP only. */}}
{{- define "parallels-agent.healthPort" -}}
9464
{{- end }}

{{/* Where the state volume is mounted; the agent's state dir is a folder inside it, which it owns and makes 0700. */}}
{{- define "parallels-agent.stateMount" -}}
/var/lib/parallels-agent
{{- end }}

{{/* Where the extra CA certificates are mounted (NODE_EXTRA_CA_CERTS). */}}
{{- define "parallels-agent.caFile" -}}
/etc/parallels-agent/ca/ca-bundle.pem
{{- end }}

{{- define "parallels-agent.caEnabled" -}}
{{- if or .Values.caBundle.pem .Values.caBundle.existingConfigMap .Values.caBundle.existingSecret }}true{{ end }}
{{- end }}

{{- define "parallels-agent.proxyEnabled" -}}
{{- if or .Values.proxy.httpsProxy .Values.proxy.httpProxy .Values.proxy.existingSecret }}true{{ end }}
{{- end }}

{{/* The CA bundle as the agent names it for the pods it makes (PARALLELS_WORK_CA_BUNDLE): `configmap|secret/<name>/<key>` of the work namespace. */}}
{{- define "parallels-agent.workCaBundle" -}}
{{- if .Values.caBundle.existingSecret }}
{{- printf "secret/%s/%s" .Values.caBundle.existingSecret .Values.caBundle.key }}
{{- else }}
{{- printf "configmap/%s/%s" (default (printf "%s-ca" (include "parallels-agent.fullname" .)) .Values.caBundle.existingConfigMap) .Values.caBundle.key }}
{{- end }}
{{- end }}

{{/* Names of a list of `{name: …}` objects, comma-separated. */}}
{{- define "parallels-agent.joinNames" -}}
{{- $names := list }}
{{- range . }}{{ $names = append $names .name }}{{ end }}
{{- join "," $names }}
{{- end }}
