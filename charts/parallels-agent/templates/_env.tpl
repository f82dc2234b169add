{{/*
The agent's environment: its whole configuration (agent/README.md, agent/src/config.ts).
No secret appears here in clear: the bootstrap token comes from its Secret.
*/}}
{{- define "parallels-agent.env" -}}
- name: PARALLELS_CONTROL_PLANE_URL
  value: {{ .Values.controlPlane.url | quote }}
- name: PARALLELS_BOOTSTRAP_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "parallels-agent.bootstrapSecretName" . }}
      key: {{ include "parallels-agent.bootstrapSecretKey" . }}
      # Needed only until the agent has registered: a Secret removed afterwards does not keep it from starting.
      optional: true
{{- with .Values.cluster.name }}
- name: PARALLELS_CLUSTER_NAME
  value: {{ . | quote }}
{{- end }}
- name: PARALLELS_EXECUTOR
  value: kubernetes
- name: PARALLELS_STATE_DIR
  value: {{ include "parallels-agent.stateMount" . }}/state
# /healthz and /metrics on the pod's own IP, where the kubelet probes; never on every address.
- name: PARALLELS_HEALTH_HOST
  valueFrom:
    fieldRef:
      fieldPath: status.podIP
- name: PARALLELS_HEALTH_PORT
  value: {{ include "parallels-agent.healthPort" . | quote }}
- name: PARALLELS_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
- name: PARALLELS_MAX_CONCURRENT_ATTEMPTS
  value: {{ .Values.maxConcurrentAttempts | int | toString | quote }}
{{- with .Values.nats.url }}
- name: PARALLELS_NATS_URL
  value: {{ . | quote }}
{{- end }}
- name: MLFLOW_TRACKING_URI
  value: {{ .Values.mlflow.trackingUri | quote }}
# The Kubernetes executor: where and how the work pods run.
- name: PARALLELS_NAMESPACE
  value: {{ include "parallels-agent.workNamespace" . | quote }}
- name: PARALLELS_AGENT_IMAGE
  value: {{ include "parallels-agent.image" . | quote }}
- name: PARALLELS_CREDENTIALS_SECRET
  value: {{ include "parallels-agent.credentialsSecretName" . | quote }}
- name: PARALLELS_WORK_SERVICE_ACCOUNT
  value: {{ include "parallels-agent.workServiceAccountName" . | quote }}
- name: PARALLELS_WORK_NODE_SELECTOR
  value: {{ .Values.work.nodeSelector | toJson | quote }}
- name: PARALLELS_WORK_TOLERATIONS
  value: {{ .Values.work.tolerations | toJson | quote }}
- name: PARALLELS_GPU_TOLERATIONS
  value: {{ .Values.work.gpuTolerations | toJson | quote }}
{{- with .Values.work.imagePullSecrets }}
- name: PARALLELS_WORK_IMAGE_PULL_SECRETS
  value: {{ include "parallels-agent.joinNames" . | quote }}
{{- end }}
{{- with .Values.mlflow.stepsCredentialsSecret }}
- name: PARALLELS_STEPS_MLFLOW_SECRET
  value: {{ . | quote }}
{{- end }}
- name: PARALLELS_JOB_TTL_SECONDS
  value: {{ .Values.work.jobTtlSecondsAfterFinished | int | toString | quote }}
{{- with .Values.images.registry }}
# Image builds: steps without an image run in the image built from their project (once per content).
- name: PARALLELS_IMAGE_REGISTRY
  value: {{ . | quote }}
- name: PARALLELS_IMAGE_REPOSITORY_PREFIX
  value: {{ $.Values.images.repositoryPrefix | quote }}
- name: PARALLELS_IMAGE_REGISTRY_PLAIN_HTTP
  value: {{ $.Values.images.plainHttp | toString | quote }}
- name: PARALLELS_IMAGE_BUILDER
  value: {{ $.Values.images.builder | quote }}
{{- with $.Values.images.credentialsSecret }}
- name: PARALLELS_IMAGE_REGISTRY_SECRET
  value: {{ . | quote }}
{{- end }}
{{- with $.Values.images.builderImage }}
- name: PARALLELS_BUILDER_IMAGE
  value: {{ . | quote }}
{{- end }}
{{- with $.Values.images.baseImages }}
- name: PARALLELS_BASE_IMAGES
  value: {{ . | toJson | quote }}
{{- end }}
- name: PARALLELS_BUILD_TIMEOUT_SECONDS
  value: {{ $.Values.images.buildTimeoutSeconds | int | toString | quote }}
{{- end }}
{{- if include "parallels-agent.proxyEnabled" . }}
# Node 22's fetch and http(s) honour these only with NODE_USE_ENV_PROXY=1. The Kubernetes API is
# always reached directly: $(KUBERNETES_SERVICE_HOST) is expanded by the kubelet.
- name: NODE_USE_ENV_PROXY
  value: "1"
{{- with .Values.proxy.existingSecret }}
# URLs with credentials: from the Secret, here and in every pod the agent makes (never in a spec).
{{- range $key := list "HTTPS_PROXY" "HTTP_PROXY" }}
- name: {{ $key }}
  valueFrom:
    secretKeyRef:
      name: {{ $.Values.proxy.existingSecret }}
      key: {{ $key }}
      optional: true
{{- end }}
- name: PARALLELS_WORK_PROXY_SECRET
  value: {{ . | quote }}
{{- end }}
{{- with .Values.proxy.httpsProxy }}
- name: HTTPS_PROXY
  value: {{ . | quote }}
{{- end }}
{{- with .Values.proxy.httpProxy }}
- name: HTTP_PROXY
  value: {{ . | quote }}
{{- end }}
- name: NO_PROXY
  value: {{ list .Values.proxy.noProxy "$(KUBERNETES_SERVICE_HOST)" | compact | join "," | quote }}
{{- end }}
{{- if include "parallels-agent.caEnabled" . }}
- name: NODE_EXTRA_CA_CERTS
  value: {{ include "parallels-agent.caFile" . }}
# The same bundle, mounted in every pod the agent makes.
- name: PARALLELS_WORK_CA_BUNDLE
  value: {{ include "parallels-agent.workCaBundle" . | quote }}
{{- end }}
{{- end }}
