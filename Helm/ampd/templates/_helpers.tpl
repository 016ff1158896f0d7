{{/* Labels every object carries; selectors use the stable subset (name, instance, component). */}}
{{- define "ampd.selectorLabels" -}}
app.kubernetes.io/name: ampd
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "ampd.labels" -}}
{{ include "ampd.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end }}

{{- define "ampd.image" -}}
{{- if .Values.image.digest -}}
"{{ .Values.image.repository }}@{{ .Values.image.digest }}"
{{- else -}}
"{{ .Values.image.repository }}:{{ .Values.image.tag }}"
{{- end -}}
{{- end }}

{{/* The controller's in-cluster URL. */}}
{{- define "ampd.controllerURL" -}}
https://{{ .Release.Name }}-controller.{{ .Release.Namespace }}.svc:{{ .Values.controller.port }}
{{- end }}

{{- define "ampd.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile: {type: RuntimeDefault}
{{- end }}

{{- define "ampd.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities: {drop: [ALL]}
seccompProfile: {type: RuntimeDefault}
{{- end }}

{{/* The models volume: the configured source, or an emptyDir the init container fills. */}}
{{- define "ampd.modelVolume" -}}
{{- if .Values.model.initContainer.image -}}
emptyDir: {}
{{- else -}}
{{ toYaml .Values.model.volume }}
{{- end -}}
{{- end }}

{{/* An init container that fills the models volume (model.initContainer), if set. */}}
{{- define "ampd.modelInit" -}}
{{- with .Values.model.initContainer }}
{{- if .image }}
initContainers:
  - name: fetch-model
    image: {{ .image }}
    imagePullPolicy: {{ $.Values.image.pullPolicy }}
    command: {{- toYaml .command | nindent 6 }}
    env:
      - {name: AMPD_MODEL_DIR, value: /models}
    securityContext: {{- include "ampd.containerSecurityContext" $ | nindent 6 }}
    resources: {{- toYaml .resources | nindent 6 }}
    volumeMounts:
      - {name: models, mountPath: /models}
      - {name: tmp, mountPath: /tmp}
{{- end }}
{{- end }}
{{- end }}
