"""The web app's Send and Receive pages: a file from a browser straight to another browser
or `dropp receive`, over WebRTC, with Dropp only relaying the signaling (docs/p2p.md)."""
