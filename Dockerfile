FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends git qemu-system-x86 busybox-static \
        cpio bubblewrap gcc libc6-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY . /app
RUN pip install --no-cache-dir .
ENV DJANGO_SETTINGS_MODULE=reviewapp.settings
EXPOSE 8000
