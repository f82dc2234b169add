{{/*
The agent's pod template: one container, hardened (values podSecurityContext and securityContext),
a read-only root filesystem with /tmp and the state dir as volumes, probes on /healthz.
*/}}
{{- define "parallels-agent.probe" -}}
httpGet:
  path: /healthz
  port: health
{{ toYaml . }}
{{- end }}

{{- define "parallels-agent.pod" -}}
metadata:
  labels:
    {{- include "parallels-agent.labels" . | nindent 4 }}
    app.kubernetes.io/component: agent
  annotations:
    # A new bootstrap token or CA bundle restarts the agent.
    checksum/config: {{ list (include (print $.Template.BasePath "/bootstrap-secret.yaml") .) (include (print $.Template.BasePath "/ca-configmap.yaml") .) | join "" | sha256sum }}
    {{- with .Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "parallels-agent.serviceAccountName" . }}
  # The ServiceAccount mounts no token by default; only this pod gets one.
  automountServiceAccountToken: true
  enableServiceLinks: false
  # The agent lets attempts being started finish (20 s at most) and sends queued events (5 s).
  terminationGracePeriodSeconds: 45
  securityContext:
    {{- toYaml .Values.podSecurityContext | nindent 4 }}
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  containers:
    - name: agent
      image: {{ include "parallels-agent.image" . | quote }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      securityContext:
        {{- toYaml .Values.securityContext | nindent 8 }}
      env:
        {{- include "parallels-agent.env" . | nindent 8 }}
      {{- with .Values.mlflow.agentCredentialsSecret }}
      envFrom:
        - secretRef:
            name: {{ . }}
      {{- end }}
      ports:
        - name: health
          containerPort: {{ include "parallels-agent.healthPort" . }}
          protocol: TCP
      startupProbe:
        {{- include "parallels-agent.probe" .Values.startupProbe | nindent 8 }}
      livenessProbe:
        {{- include "parallels-agent.probe" .Values.livenessProbe | nindent 8 }}
      readinessProbe:
        {{- include "parallels-agent.probe" .Values.readinessProbe | nindent 8 }}
      resources:
        {{- toYaml .Values.resources | nindent 8 }}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
        - name: state
          mountPath: {{ include "parallels-agent.stateMount" . }}
        {{- if include "parallels-agent.caEnabled" . }}
        - name: ca-bundle
          mountPath: {{ dir (include "parallels-agent.caFile" .) }}
          readOnly: true
        {{- end }}
  volumes:
    - name: tmp
      emptyDir:
        sizeLimit: 256Mi
    - name: state
      {{- if .Values.persistence.enabled }}
      persistentVolumeClaim:
        claimName: {{ include "parallels-agent.fullname" . }}-state
      {{- else }}
      emptyDir:
        sizeLimit: {{ .Values.persistence.size }}
      {{- end }}
    {{- if include "parallels-agent.caEnabled" . }}
    - name: ca-bundle
      {{- $item := dict "key" .Values.caBundle.key "path" (base (include "parallels-agent.caFile" .)) }}
      {{- if .Values.caBundle.existingSecret }}
      secret:
        secretName: {{ .Values.caBundle.existingSecret }}
        items: [{{ toJson $item }}]
      {{- else }}
      configMap:
        name: {{ default (printf "%s-ca" (include "parallels-agent.fullname" .)) .Values.caBundle.existingConfigMap }}
        items: [{{ toJson $item }}]
      {{- end }}
    {{- end }}
{{- end }}
