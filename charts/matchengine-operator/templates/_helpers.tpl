{{/* The chart's name. */}}
{{- define "matchengine-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* A fully qualified app name, at most 63 characters. */}}
{{- define "matchengine-operator.fullname" -}}
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

{{- define "matchengine-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "matchengine-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "matchengine-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "matchengine-operator.labels" -}}
helm.sh/chart: {{ include "matchengine-operator.chart" . }}
{{ include "matchengine-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "matchengine-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "matchengine-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The labels of MatchEngine node pods (set by the operator). */}}
{{- define "matchengine-operator.nodeSelectorLabels" -}}
app.kubernetes.io/name: matchengine
app.kubernetes.io/component: node
{{- end }}
