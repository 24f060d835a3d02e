<?php
// Verifying openid-gateway's X-Openid-Token in PHP with firebase/php-jwt.
//
//   composer require firebase/php-jwt guzzlehttp/guzzle phpfastcache/phpfastcache
//
//   $claims = verify_openid_token($_SERVER['HTTP_X_OPENID_TOKEN'] ?? '');
//   $claims->sub; // the WeChat openid
//
// Pin the algorithm, and check issuer, audience and expiry. CachedKeySet fetches and caches
// the gateway's key set; an unknown kid (after a rotation) refetches it.
use Firebase\JWT\CachedKeySet;
use Firebase\JWT\JWT;
use GuzzleHttp\Client;
use GuzzleHttp\Psr7\HttpFactory;
use Phpfastcache\CacheManager;

const OPENID_GATEWAY_JWKS = 'https://h5.example.com/.gateway/jwks.json';
const OPENID_GATEWAY_ISSUER = 'https://h5.example.com';
const OPENID_GATEWAY_AUDIENCE = 'shop';

function verify_openid_token(string $token): object
{
    if ($token === '') {
        throw new UnexpectedValueException('no X-Openid-Token header');
    }
    static $keys = null;
    $keys ??= new CachedKeySet(
        OPENID_GATEWAY_JWKS,
        new Client(),
        new HttpFactory(),
        CacheManager::getInstance('files'),
        300,
        true,
        'ES256'
    );
    JWT::$leeway = 30;
    $claims = JWT::decode($token, $keys); // checks signature (pinned by the key set), exp, nbf
    if (($claims->iss ?? null) !== OPENID_GATEWAY_ISSUER) {
        throw new UnexpectedValueException('wrong issuer');
    }
    if (($claims->aud ?? null) !== OPENID_GATEWAY_AUDIENCE) {
        throw new UnexpectedValueException('wrong audience');
    }
    return $claims;
}
